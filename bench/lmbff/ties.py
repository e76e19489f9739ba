"""How often the grid pick ties, and what LM-BFF's tie rule would change: ``python -m bench.lmbff.ties``.

LM-BFF's ``tools/gather_result.py`` keeps, per data split, the trial with the best dev accuracy and
on a tie the *first trial in its log*: ``run_experiment.sh``'s loops (README) run batch sizes
2, 4, 8 outside learning rates 1e-5, 2e-5, 5e-5. The tables here keep the first point in
config-hash order (``bench.tables.cells``). This reads the finished LM-BFF records and prints,
per cell (task, method, rank, tag), the data splits whose best dev score ties across grid points,
how many of those the two rules resolve differently, and the cell's test mean under each rule.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from bench.paths import results_dir

LMBFF_BATCHES = (2, 4, 8)  # outer loop of run_experiment.sh's grid (README)
LMBFF_LRS = (1e-5, 2e-5, 5e-5)  # inner loop


def lmbff_order(lr: float, batch: int) -> tuple[int, int]:
    """The trial's position in LM-BFF's log (batch size outer, learning rate inner); unknown values last."""
    b = LMBFF_BATCHES.index(batch) if batch in LMBFF_BATCHES else len(LMBFF_BATCHES)
    lr_pos = next((i for i, v in enumerate(LMBFF_LRS) if abs(v - lr) < 1e-12), len(LMBFF_LRS))
    return b, lr_pos


def pick(points: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    """The kept grid point: best dev accuracy; ties by ``rule`` (``hash`` or ``lmbff``)."""
    best = max(p["dev"] for p in points)
    tied = [p for p in points if p["dev"] == best]
    key = (lambda p: p["config_hash"]) if rule == "hash" else (lambda p: lmbff_order(p["lr"], p["batch"]))
    return min(tied, key=key)


def load(root: Path) -> dict[tuple, dict[int, list[dict[str, Any]]]]:
    """cell -> data split (seed) -> grid points, from the LM-BFF records of trained methods."""
    cells: dict[tuple, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.glob("*/*-k16*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        spec, metrics, trainer = record["spec"], record["metrics"], record["config"].get("trainer") or {}
        if "dev" not in metrics or "test" not in metrics or record["spec"].get("method") in ("manual", "icl"):
            continue
        key = (spec["task"], spec["variant"], spec["model"], spec["method"], spec.get("rank") or 0, spec.get("tag"))
        cells[key][int(spec["seed"])].append({"config_hash": spec["config_hash"], "lr": float(trainer["lr"]),
                                              "batch": int(trainer["batch_size"]),
                                              "dev": metrics["dev"]["overall"]["accuracy"],
                                              "test": metrics["test"]["overall"]["accuracy"]})
    return cells


def report(root: Path) -> list[str]:
    lines = ["| cell | splits | tied splits | resolved differently | test mean: hash order | LM-BFF order |",
             "|---|---|---|---|---|---|"]
    for key, splits in sorted(load(root).items(), key=lambda kv: str(kv[0])):
        grids = {s: pts for s, pts in splits.items() if len(pts) > 1}
        if not grids:
            continue
        tied = [s for s, pts in grids.items() if sum(p["dev"] == max(q["dev"] for q in pts) for p in pts) > 1]
        differ = [s for s in tied if pick(grids[s], "hash") is not pick(grids[s], "lmbff")]
        by_hash = mean(pick(p, "hash")["test"] for p in grids.values()) * 100
        by_lmbff = mean(pick(p, "lmbff")["test"] for p in grids.values()) * 100
        lines.append(f"| {' '.join(str(k) for k in key)} | {len(grids)} | {len(tied)} | {len(differ)} | "
                     f"{by_hash:.1f} | {by_lmbff:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lmbff.ties", description=__doc__)
    parser.add_argument("--runs", type=Path, default=None, help="records folder (default: results/runs)")
    args = parser.parse_args(argv)
    print("\n".join(report(args.runs or results_dir() / "runs")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
