"""What a study's plan and the results folder hold, as lines: run states, failures, every record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from bench.records import latest_failure
from bench.study_plan import StudyPlan, failure_line, record_score


def status_lines(plan: StudyPlan, verbose: bool = True) -> list[str]:
    lines = []
    if verbose:
        for r in plan.runs:
            rank = "" if r.rank is None else f" r{r.rank}"
            shown = r.detail if r.state in ("failed", "n/a", "missing data") else r.score
            lines.append(f"{r.state:8s} {r.preset} x {r.model} seed{r.seed}{rank}: {r.name}"
                         + (f"  [{shown}]" if shown else "")
                         + (f"  [inputs not finished: {len(r.inputs_pending)}]" if r.inputs_pending else ""))
    lines.append(f"{len(plan.runs)} runs: {plan.count('done')} done, {plan.count('missing')} missing, "
                 f"{plan.count('failed')} failed, {plan.count('n/a')} not applicable, "
                 f"{plan.count('missing data')} missing data (fetch command in the detail)")
    return lines


def failure_report(plan: StudyPlan, failed_dir: Path) -> list[str]:
    """Failed runs: the first missing-weights error whole, then one line per model; other errors one line each."""
    lines, weights_models = [], {}
    for r in plan.runs:
        if r.state != "failed":
            continue
        if r.detail.startswith("MissingWeightsError") and r.model not in weights_models:
            weights_models[r.model] = latest_failure(failed_dir, r.name)
        elif not r.detail.startswith("MissingWeightsError"):
            lines.append(f"  {r.name}: {r.detail}")
    if weights_models:
        first = next(iter(weights_models.values()))
        message = json.loads(first.read_text(encoding="utf-8")).get("message", "") if first else ""
        lines = [f"missing weights ({len(weights_models)} model(s)); the first error in full:", message,
                 *[f"  {m}: weights missing, its runs not done (details: {p})" for m, p in weights_models.items()],
                 *lines]
    return lines


def clear_failed(names: Sequence[str], failed_dir: Path) -> int:
    """Move every failure file of ``names`` to ``failed/cleared/`` (kept, no longer listed); say how many."""
    cleared = failed_dir / "cleared"
    moved = 0
    for name in names:
        for path in sorted(failed_dir.glob(f"{name}.*.json")):
            cleared.mkdir(parents=True, exist_ok=True)
            path.rename(cleared / path.name)
            moved += 1
    print(f"cleared {len(names)} failed runs: {moved} failure files moved to {cleared} (they no longer show as failed)")
    return moved


def all_records_status(results: Path, clear: bool = False) -> int:
    """Every record and failure under ``results``: one line each; runs that differ only in config show how."""
    from bench.records import iter_records

    errors: list = []
    records = list(iter_records(results / "runs", errors))
    by_spec: dict[tuple, list[dict]] = {}
    for _, record in records:
        spec = record["spec"]
        key = tuple(spec.get(k) for k in ("task", "variant", "model", "method", "template", "rank", "seed", "tag"))
        by_spec.setdefault(key, []).append(record)
    for group in by_spec.values():
        differing = _differing_keys([r.get("config") or {} for r in group]) if len(group) > 1 else {}
        for i, record in enumerate(group):
            extra = ", ".join(f"{k}={v[i]}" for k, v in differing.items())
            print(f"done     {record['name']}  [{record_score(record)}]" + (f"  [{extra}]" if extra else ""))
    failed_names = sorted({p.name.split(".")[0] for p in (results / "failed").glob("*.json")})
    done = {record["name"] for _, record in records}
    for name in failed_names:
        if name not in done:
            print(f"failed   {name}  [{failure_line(latest_failure(results / 'failed', name))}]")
    if clear:
        clear_failed([n for n in failed_names if n not in done], results / "failed")
    elif any(n not in done for n in failed_names):
        print("(python -m bench.study status --clear-failed moves these failure files aside)")
    for err in errors:
        print(f"corrupt  {err}")
    print(f"{len(records)} finished records, {len([n for n in failed_names if n not in done])} failed runs "
          f"without a record, {len(errors)} unreadable files under {results}")
    return 0


def _differing_keys(configs: list[dict]) -> dict[str, list]:
    from bench.identity import flat_identity

    flat = [flat_identity(c) for c in configs]
    keys = sorted(set().union(*flat))
    return {k: [f.get(k) for f in flat] for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1}
