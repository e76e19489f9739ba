"""Studies: a YAML (``conf/study/<name>.yaml``) of presets x models x seeds, run through Hydra's multirun.

``python -m bench.study run lama --models tiny-bert,tiny-gpt2 [--launcher local|slurm] [overrides]``
launches ``python -m bench.run -m experiment=... model=... ranks=preset`` (one job per preset, model
and seed; ``bench.job``), then lists what finished and what failed, and exits 1 naming failed runs.
Presets that read other runs (``needs.presets``, :mod:`bench.inputs`) run in later stages: one
multirun per stage, on any launcher, each started when the one before has finished; a job whose
inputs did not all finish is held back and named, the others go on.
``python -m bench.study status lama --models ...`` lists done / missing / failed runs without running
anything; ``status`` without a study lists every record and failure under the results folder.
A rerun of a finished study launches nothing. Names that match nothing exit 2 with the closest ones.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from bench.errors import BenchError, ConfigError
from bench.inputs import compose_job, needed_runs, needs_of
from bench.paths import REPO_ROOT, results_dir
from bench.records import is_finished, latest_failure, load_record

CONF_DIR = REPO_ROOT / "conf"
LAUNCHERS = ("basic", "local", "slurm", "submitit")  # conf/hydra/launcher/<name>.yaml (basic: Hydra's own)


@dataclass
class RunState:
    preset: str
    model: str
    seed: int
    rank: int | None
    name: str
    state: str  # done | missing | failed | n/a | missing data (a split not in the prepared data)
    detail: str = ""
    inputs_pending: list[str] = field(default_factory=list)  # "<state>: <name>" of each input run not done
    score: str = ""  # a finished run's reported score ("val score 0.8125")


@dataclass
class StudyPlan:
    runs: list[RunState] = field(default_factory=list)
    needs: dict[str, list[str]] = field(default_factory=dict)  # preset -> the presets whose runs it reads

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.runs)


def _names(folder: Path) -> list[str]:
    if folder.name == "experiment":  # files and the presets of the recipes (bench.grid)
        from bench.grid import preset_names

        return preset_names(folder.parent)
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_name(kind: str, name: str, folder: Path) -> None:
    """ConfigError with the closest known names when ``name`` matches no YAML in ``folder``."""
    known = _names(folder)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"no {kind} named {name!r} in {folder}{hint} (known: {', '.join(known)})")


def load_study(name: str, conf_dir: Path = CONF_DIR) -> dict:
    check_name("study", name, conf_dir / "study")
    from bench.checks import check_conf_files

    path = conf_dir / "study" / f"{name}.yaml"
    check_conf_files(conf_dir)  # a malformed YAML (the study's or a preset's): file:line:column, not a traceback
    study = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for key in ("presets", "models"):
        if not study.get(key):
            raise ConfigError(f"{path}: key {key!r} is missing or empty (a list of conf/{'experiment' if key == 'presets' else 'model'} names)")
    for preset in study["presets"]:
        check_name("experiment preset", preset, conf_dir / "experiment")
    return study


def debug_override(study: dict, models: Sequence[str], overrides: Sequence[str]) -> str | None:
    """The study's debug preset when every model matches its prefixes (``debug:`` in order, each entry
    also admitting the prefixes before it: tiny only -> smoke, tiny and mini -> mini), unless debug= is given."""
    if any(o.split("=")[0].lstrip("+~") == "debug" for o in overrides):
        return None
    prefixes = list((study.get("debug") or {}).items())
    for i in range(len(prefixes)):
        allowed = [p for p, _ in prefixes[: i + 1]]
        if all(any(m.startswith(p) for p in allowed) for m in models):
            return f"debug={prefixes[i][1]}"
    return None


def expand_overrides(overrides: Sequence[str]) -> list[list[str]]:
    """Hydra sweep overrides (``a=1,2``) expanded into every combination, as the basic sweeper does."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
               else [o.input_line] for o in parsed]
    return [list(c) for c in itertools.product(*choices)] if choices else [[]]


@contextmanager
def hydra_context(conf_dir: Path = CONF_DIR) -> Iterator[None]:
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3", job_name="study"):
        yield


def plan_study(presets: Sequence[str], models: Sequence[str], seeds: Sequence[int] | None,
               overrides: Sequence[str]) -> StudyPlan:
    """Every run of the study with its state; composes configs only (call inside :func:`hydra_context`)."""
    from bench.job import missing_data, not_applicable, plan_job

    plan = StudyPlan()
    inputs_cache: dict = {}  # input runs planned once per (preset, model, seed, overrides)
    seed_sets = [[f"seed={s}"] for s in seeds] if seeds else [[]]
    job_overrides = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]  # launcher's
    for model, preset, seed_set, extra in itertools.product(models, presets, seed_sets, expand_overrides(job_overrides)):
        cfg = compose_job(preset, model, [*seed_set, *extra])
        why = not_applicable(cfg)
        if why:
            plan.runs.append(RunState(preset, model, int(cfg.seed), None, "-", "n/a", why))
            continue
        if (gap := missing_data(cfg)) is not None:
            plan.runs.append(RunState(preset, model, int(cfg.seed), None, "-", "missing data",
                                      str(gap).splitlines()[0]))
            continue
        failed_dir = Path(cfg.paths.results_dir) / "failed"
        plan.needs[preset] = needs_of(cfg)[0]
        pending = [f"{i.state}: {i.name}" for i in needed_runs(cfg, plan_job, [*seed_set, *extra], inputs_cache)
                   if i.state != "done"] if plan.needs[preset] else []
        for run in plan_job(cfg, preset):
            score = ""
            if is_finished(run.path):
                state, detail, score = "done", str(run.path), record_score(load_record(run.path))
            elif (failure := latest_failure(failed_dir, run.spec.name)) is not None:
                state, detail = "failed", _failure_line(failure)
            else:
                state, detail = "missing", ""
            plan.runs.append(RunState(preset, model, int(cfg.seed), run.rank, run.spec.name, state, detail, pending,
                                      score))
    return plan


def stages(presets: Sequence[str], needs: dict[str, list[str]]) -> list[list[str]]:
    """The presets in waves: a preset runs one wave after the last of the study's presets it reads."""
    level: dict[str, int] = {}

    def depth(preset: str, seen: tuple[str, ...] = ()) -> int:
        if preset in seen:
            raise ConfigError(f"needs.presets form a cycle: {' -> '.join((*seen, preset))}")
        if preset not in level:
            inside = [q for q in needs.get(preset, []) if q in presets]
            level[preset] = 1 + max((depth(q, (*seen, preset)) for q in inside), default=-1)
        return level[preset]

    for preset in presets:
        depth(preset)
    return [[p for p in presets if level[p] == i] for i in range(max(level.values(), default=-1) + 1)]


def job_groups(jobs: set[tuple[str, str, int]], presets: Sequence[str], models: Sequence[str]
               ) -> list[tuple[list[str], list[str], list[int]]]:
    """(preset, model, seed) jobs as few Hydra multiruns (each a product presets x models x seeds) as this finds."""
    per_model: dict[tuple[tuple[str, ...], tuple[int, ...]], list[str]] = {}
    for model in models:
        mine = {(p, s) for p, m, s in jobs if m == model}
        chosen = [p for p in presets if any(q == p for q, _ in mine)]
        seeds = sorted({s for _, s in mine})
        if mine == {(p, s) for p in chosen for s in seeds}:
            parts = [(tuple(chosen), tuple(seeds))] if mine else []
        else:  # some jobs of this model are held back: one multirun per preset
            parts = [((p,), tuple(sorted(s for q, s in mine if q == p))) for p in chosen]
        for part in parts:
            per_model.setdefault(part, []).append(model)
    return [(list(p), ms, list(s)) for (p, s), ms in per_model.items()]


def _failure_line(path: Path) -> str:
    try:
        failure = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return f"{path} (unreadable)"
    message = str(failure.get("message") or failure.get("error") or "").strip().splitlines()
    return f"{failure.get('error_type', 'Error')}: {message[0] if message else ''} ({path})"


SCORE_KEYS = (("score", "score"), ("macro_over_relations", "P@1 macro"), ("accuracy", "accuracy"))


def record_score(record: dict) -> str:
    """The run's headline number on its report split, e.g. ``val score 0.8125`` (LAMA: ``test P@1 macro ...``)."""
    split = record.get("report_split")
    overall = ((record.get("metrics") or {}).get(split) or {}).get("overall") or {}
    for key, label in SCORE_KEYS:
        if isinstance(overall.get(key), int | float):
            return f"{split} {label} {overall[key]:.4f}"
    return f"{split}: no score"


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


def launch(presets: Sequence[str], models: Sequence[str], seeds: Sequence[int] | None, launcher: str,
           overrides: Sequence[str]) -> int:
    """One Hydra multirun over presets x models (x seeds); returns its exit code."""
    command = [sys.executable, "-m", "bench.run", "-m", f"experiment={','.join(presets)}",
               f"model={','.join(models)}", "ranks=preset"]
    if seeds:
        command.append(f"seed={','.join(str(s) for s in seeds)}")
    if launcher != "basic":
        command.append(f"hydra/launcher={launcher}")
    command += list(overrides)
    if not any(o.startswith(("paths.results_dir=", "paths.root=")) for o in overrides):
        command.append(f"paths.results_dir={results_dir()}")  # the folder status and the summary read
    print("launching: " + " ".join(command[1:]), flush=True)
    return subprocess.call(command, cwd=str(REPO_ROOT))


def _study_args(args) -> tuple[dict, list[str], list[int] | None, list[str]]:
    study = load_study(args.study)
    if args.presets:
        chosen = [p for p in args.presets.split(",") if p]
        for preset in chosen:
            if preset not in study["presets"]:
                close = difflib.get_close_matches(preset, study["presets"], n=3, cutoff=0.5)
                raise ConfigError(f"preset {preset!r} is not in study {args.study!r}"
                                  + (f"; did you mean {', '.join(close)}?" if close else ""))
        study["presets"] = chosen
    models = [m for m in (args.models or ",".join(study["models"])).split(",") if m]
    for model in models:
        check_name("model", model, CONF_DIR / "model")
    overrides = list(args.overrides)
    debug = debug_override(study, models, overrides)
    if debug:
        print(f"models {', '.join(models)}: adding {debug} (give debug=none for full-length runs)")
        overrides.append(debug)
    seeds = study.get("debug_seeds", study.get("seeds")) if debug else study.get("seeds")
    if seeds and not any(o.split("=")[0] == "needs.seeds" for o in overrides):
        overrides.append(f"needs.seeds=[{','.join(str(s) for s in seeds)}]")  # the runs a later stage reads
    return study, models, seeds, overrides


def cmd_status(args) -> int:
    if not args.study:
        return all_records_status(Path(args.results), clear=args.clear_failed)
    study, models, seeds, overrides = _study_args(args)
    with hydra_context():
        plan = plan_study(study["presets"], models, seeds, overrides)
    print("\n".join(status_lines(plan, verbose=not args.quiet)))
    if args.clear_failed:
        clear_failed([r.name for r in plan.runs if r.state == "failed"], Path(after_results(overrides)) / "failed")
    elif plan.count("failed"):
        print("(python -m bench.study status <study> --clear-failed moves their failure files aside)")
    return 0


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


def cmd_run(args) -> int:
    from bench.study_join import plan_joins

    study, models, seeds, overrides = _study_args(args)
    if args.force:
        overrides.append("force=true")
    with hydra_context():
        before = plan_study(study["presets"], models, seeds, overrides)
    waves = stages(study["presets"], before.needs)
    code, held = 0, []
    for i, wave in enumerate(waves):
        if i:  # re-plan: the inputs of this wave were made by the waves before
            with hydra_context():
                now = plan_study(wave, models, seeds, overrides)
        else:
            now = StudyPlan([r for r in before.runs if r.preset in wave], before.needs)
        pending = [r for r in now.runs if r.state in ("missing", "failed") or (args.force and r.state == "done")]
        jobs = {(r.preset, r.model, r.seed) for r in pending}
        blocked = {(r.preset, r.model, r.seed): r.inputs_pending for r in pending if r.inputs_pending}
        for (preset, model, seed), why in blocked.items():
            held.append(f"  {preset} x {model} seed{seed}: not started, {len(why)} input runs not finished: "
                        + "; ".join(why[:6]) + (f"; ... ({len(why) - 6} more)" if len(why) > 6 else ""))
            print("held back" + held[-1][1:], flush=True)
        runnable = jobs - set(blocked)
        if not runnable:
            continue
        with hydra_context():  # jobs that differ only in seed, whose soft prompts train together: one job (bench.study_join)
            joins = plan_joins(runnable, overrides, expand_overrides, enabled=not args.no_join)
        groups = job_groups(joins.alone(), wave, models)
        label = f"stage {i + 1} of {len(waves)}: " if len(waves) > 1 else ""
        print(f"study {args.study}: {label}{sum(1 for r in pending if (r.preset, r.model, r.seed) in runnable)} of "
              f"{len(now.runs)} runs to do ({len(runnable)} jobs: {', '.join(p for p in wave if any(j[0] == p for j in runnable))}"
              f"; launcher {args.launcher})", flush=True)
        for line in joins.lines():
            print(line, flush=True)
        for presets, todo_models, todo_seeds in groups:
            code = launch(presets, todo_models, todo_seeds if seeds else None, args.launcher, overrides) or code
        for presets, todo_models, first_seed, joint_seeds in joins.launches():
            code = launch(presets, todo_models, first_seed, args.launcher, [*overrides, *joint_seeds]) or code
    if any(r.state in ("missing", "failed") or args.force for r in before.runs):
        with hydra_context():
            after = plan_study(study["presets"], models, seeds, [o for o in overrides if o != "force=true"])
    else:
        after = before
    results = Path(after_results(overrides))
    ran = sum(1 for b, a in zip(before.runs, after.runs, strict=True) if a.state == "done" and
              (b.state != "done" or args.force))
    print(f"study {args.study}: {ran} run now, {before.count('done') if not args.force else 0} finished before, "
          f"{after.count('failed')} failed, {after.count('missing')} missing, {after.count('n/a')} not applicable, {after.count('missing data')} missing data "
          f"(records: {results / 'runs'})")
    failures = failure_report(after, results / "failed")
    if failures:
        print(f"failed runs (tracebacks in {results / 'failed'}):")
        print("\n".join(failures))
    if held:
        print("runs held back because an input run they read did not finish:")
        print("\n".join(held))
    return 1 if after.count("failed") or after.count("missing") or code else 0


def after_results(overrides: Sequence[str]) -> str:
    for o in overrides:
        if o.startswith("paths.results_dir="):
            return o.split("=", 1)[1]
    return str(results_dir())


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
            print(f"failed   {name}  [{_failure_line(latest_failure(results / 'failed', name))}]")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.study", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every unfinished job of a study (Hydra multirun)")
    status = sub.add_parser("status", help="list done / missing / failed runs; nothing runs")
    for p in (run, status):
        p.add_argument("study", nargs="?" if p is status else None, help="conf/study/<name>.yaml")
        p.add_argument("--models", default=None, help="comma-separated conf/model names (default: the study's)")
        p.add_argument("--presets", default=None, help="comma-separated subset of the study's presets")
    run.add_argument("--launcher", default="basic", choices=LAUNCHERS,
                     help="basic: this process; local: worker pool (conf/hydra/launcher/local.yaml); slurm; "
                          "submitit (submitit's local executor); one wave per stage on each")
    run.add_argument("--force", action="store_true", help="rerun finished runs (old records kept as .bak)")
    run.add_argument("--no-join", action="store_true", help="one job per seed even where the seeds' soft prompts "
                     "could train together in one job on one frozen backbone (docs/joint-training.md)")
    status.add_argument("--results", default=str(results_dir()), help="results folder (status without a study)")
    status.add_argument("--quiet", action="store_true", help="only the counts")
    status.add_argument("--clear-failed", action="store_true",
                        help="move the failure files of the runs listed as failed to <results>/failed/cleared/")
    parser.epilog = ("Any other argument is a Hydra override for every job, e.g. device=cpu trainer.lr=1e-4. run joins the "
                     "seeds of a soft-prompt preset into one job (bench.study_join); run --no-join: one job per seed")
    args, args.overrides = parser.parse_known_args(argv)
    unknown = [o for o in args.overrides if o.startswith("-") and "=" not in o]
    if unknown:
        parser.error(f"unknown options {unknown}")
    try:
        return cmd_run(args) if args.command == "run" else cmd_status(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
