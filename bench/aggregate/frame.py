"""Records -> one tidy pandas frame. Nothing downstream of a record reads anything else."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.records import iter_records

COLUMNS = ["name", "task", "variant", "model", "method", "template", "seed", "tag", "split", "is_report",
           "macro_over_relations", "pooled", "n_facts", "n_relations", "real_only_macro", "real_only_pooled",
           "trainable_params", "wall_time_s", "path"]


def records_frame(runs_dir: Path) -> pd.DataFrame:
    """One row per (record, split) with the spec and the overall metrics of that split."""
    rows = []
    for path, record in iter_records(runs_dir):
        spec = record["spec"]
        for split, metrics in record["metrics"].items():
            overall = metrics.get("overall", {})
            real = metrics.get("subsets", {}).get("real_only", {})
            rows.append({
                "name": record["name"], **{k: spec.get(k) for k in ("task", "variant", "model", "method",
                                                                      "template", "seed", "tag")},
                "split": split, "is_report": split == record.get("report_split"),
                "macro_over_relations": overall.get("macro_over_relations"), "pooled": overall.get("pooled"),
                "n_facts": overall.get("n_facts"), "n_relations": overall.get("n_relations"),
                "real_only_macro": real.get("macro_over_relations"), "real_only_pooled": real.get("pooled"),
                "trainable_params": record.get("params", {}).get("trainable"),
                "wall_time_s": record.get("provenance", {}).get("wall_time_s"), "path": str(path),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def group_frame(runs_dir: Path, split: str | None = None) -> pd.DataFrame:
    """One row per (record, split, group): per-relation P@1, for per-relation tables and charts."""
    rows = []
    for _, record in iter_records(runs_dir):
        spec = record["spec"]
        for split_name, metrics in record["metrics"].items():
            if split is not None and split_name != split:
                continue
            for group, entry in metrics.get("groups", {}).items():
                rows.append({"name": record["name"], **{k: spec.get(k) for k in ("task", "variant", "model",
                                                                                   "method", "template", "tag")},
                             "split": split_name, "group": group, "p_at_1": entry["p_at_1"], "n": entry["n"],
                             "n_reconstructed": entry.get("n_reconstructed", 0)})
    return pd.DataFrame(rows)
