"""The LAMA tables: rows = models, columns = prompt sets / methods, cells = P@1 (macro over relations).

Each cell shows our number, the published one where the paper has it, and the difference.
Columns are keyed by template name for zero-shot methods (manual prompts, searched discrete
prompts) and by method name otherwise (e.g. ``ptuning``). Missing cells are shown as "—" and
listed in the notes; the tables never fail on missing runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.aggregate.frame import group_frame, records_frame
from bench.aggregate.render import fmt, write_table

ZERO_SHOT_METHODS = {"manual"}
COLUMN_ORDER = ["lama", "lpaqa", "autoprompt_bert", "autoprompt_roberta", "ptuning"]


def load_published(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    required = {"table", "variant", "model", "column", "value", "source", "checked"}
    missing = required - set(frame.columns)
    if missing:
        from bench.errors import DataError

        raise DataError(f"published numbers lack columns {sorted(missing)}", file=path, line=1,
                        fix="keep the header of results/paper/published.csv")
    return frame


def column_key(row: pd.Series) -> str:
    return row["template"] if row["method"] in ZERO_SHOT_METHODS else row["method"]


def row_label(row: pd.Series) -> str:
    return row["model"] if not isinstance(row["tag"], str) else f"{row['model']} [{row['tag']}]"


def lama_cells(frame: pd.DataFrame, variant: str, published: pd.DataFrame) -> pd.DataFrame:
    """Tidy cells: model x column with ours, paper, delta (percent), counts and provenance flags."""
    report = frame[(frame["task"] == "lama") & (frame["variant"] == variant) & frame["is_report"]].copy()
    pub = published[(published["table"] == "lama") & (published["variant"] == variant)]
    cells = []
    if not report.empty:
        report["column"] = report.apply(column_key, axis=1)
        report["row"] = report.apply(row_label, axis=1)
        for _, r in report.iterrows():
            cells.append({"row": r["row"], "model": r["model"], "column": r["column"],
                          "ours": 100 * r["macro_over_relations"] if r["macro_over_relations"] is not None else None,
                          "ours_pooled": 100 * r["pooled"] if r["pooled"] is not None else None,
                          "ours_real_only": 100 * r["real_only_macro"] if r["real_only_macro"] is not None else None,
                          "n_facts": r["n_facts"], "n_relations": r["n_relations"], "record": r["name"]})
    for _, p in pub.iterrows():  # published cells without our run still appear (ours missing)
        if not any(c["model"] == p["model"] and c["column"] == p["column"] for c in cells):
            cells.append({"row": p["model"], "model": p["model"], "column": p["column"], "ours": None,
                          "ours_pooled": None, "ours_real_only": None, "n_facts": None, "n_relations": None,
                          "record": None})
    tidy = pd.DataFrame(cells, columns=["row", "model", "column", "ours", "ours_pooled", "ours_real_only",
                                        "n_facts", "n_relations", "record"])
    lookup = {(p["model"], p["column"]): p for _, p in pub.iterrows()}
    tidy["paper"] = [lookup[(m, c)]["value"] if (m, c) in lookup else None for m, c in zip(tidy["model"], tidy["column"], strict=True)]
    tidy["paper_checked"] = [lookup[(m, c)]["checked"] if (m, c) in lookup else None
                             for m, c in zip(tidy["model"], tidy["column"], strict=True)]
    tidy["delta"] = [o - p if o is not None and p is not None and not pd.isna(o) and not pd.isna(p) else None
                     for o, p in zip(tidy["ours"], tidy["paper"], strict=True)]
    tidy["variant"] = variant
    return tidy


def lama_display(tidy: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Wide table: one row per model; per column 'ours', 'paper' and 'Δ' where a paper number exists."""
    columns = sorted(tidy["column"].unique(), key=lambda c: (COLUMN_ORDER.index(c) if c in COLUMN_ORDER else 99, c))
    notes = []
    rows = []
    for row_name in sorted(tidy["row"].unique()):
        out = {"model": row_name}
        for column in columns:
            cell = tidy[(tidy["row"] == row_name) & (tidy["column"] == column)]
            has_paper = tidy[(tidy["column"] == column)]["paper"].notna().any()
            ours = cell["ours"].iloc[0] if not cell.empty else None
            out[f"{column}"] = fmt(ours)
            if has_paper:
                paper = cell["paper"].iloc[0] if not cell.empty else None
                checked = cell["paper_checked"].iloc[0] if not cell.empty else None
                out[f"{column} (paper)"] = fmt(paper) + ("*" if checked == "no" else "")
                out[f"{column} Δ"] = fmt(cell["delta"].iloc[0] if not cell.empty else None, signed=True)
            if cell.empty or cell["ours"].isna().all():
                notes.append(f"missing: {row_name} x {column} (no finished record)")
        rows.append(out)
    if tidy["paper_checked"].eq("no").any():
        notes.append("* published number not checked against the paper offline (results/paper/published.csv)")
    notes.append("P@1 in percent, macro over relations (mean of per-relation P@1) on the report split; "
                 "pooled and real-only (without reconstructed test facts) values are in the CSV")
    return pd.DataFrame(rows), notes


def per_relation_table(runs_dir: Path, variant: str) -> pd.DataFrame:
    groups = group_frame(runs_dir, split="test")
    if groups.empty:
        return groups
    groups = groups[(groups["task"] == "lama") & (groups["variant"] == variant)]
    if groups.empty:
        return groups
    groups = groups.assign(column=lambda g: g.apply(
        lambda r: r["template"] if r["method"] in ZERO_SHOT_METHODS else r["method"], axis=1),
        p_at_1=lambda g: 100 * g["p_at_1"])
    wide = groups.pivot_table(index="group", columns=["model", "column"], values="p_at_1", aggfunc="first")
    wide.columns = [f"{m} / {c}" for m, c in wide.columns]
    return wide.reset_index().rename(columns={"group": "relation"})


def write_lama_tables(runs_dir: Path, out_dir: Path, published_csv: Path) -> list[Path]:
    frame = records_frame(runs_dir)
    published = load_published(published_csv)
    written: list[Path] = []
    for variant, title in (("lama34k", "LAMA-34k P@1"), ("lama29k", "LAMA-29k P@1")):
        tidy = lama_cells(frame, variant, published)
        if tidy.empty:
            continue
        display, notes = lama_display(tidy)
        written += write_table(out_dir, f"{variant}", display, tidy, title, notes)
        per_rel = per_relation_table(runs_dir, variant)
        if not per_rel.empty:
            display_rel = per_rel.copy()
            for col in display_rel.columns[1:]:
                display_rel[col] = display_rel[col].map(fmt)
            written += write_table(out_dir, f"{variant}_per_relation", display_rel, per_rel,
                                   f"{title} per relation", ["P@1 in percent on the report split"])
    return written
