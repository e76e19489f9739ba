"""The LAMA tables: rows = models, columns = prompt sets / methods, cells = P@1 (macro over relations).

Each cell shows our number, the published one where the paper has it, and the difference.
Columns are keyed by :func:`column_of`: the template name for zero-shot methods (manual prompts,
searched discrete prompts), the method name for a trained method with its default template
(``ptuning``, ``lm_finetune``) and ``method+template`` otherwise (``lm_finetune+lama`` = MP+FT).
Only the columns of the paper's table are shown; sensitivity runs (paraphrase ranks) have their
own tables. Missing cells are shown as "—" and listed in the notes; the tables never fail on
missing runs. A cell whose run departs from the paper's protocol gets a "†" and a note.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bench.aggregate.frame import group_frame, records_frame
from bench.aggregate.render import fmt, write_table
from bench.records import iter_records

ZERO_SHOT_METHODS = {"manual"}
METHOD_DEFAULT_TEMPLATE = {"ptuning": "ptuning_lama", "lm_finetune": "bare", "majority": "lama"}
LAMA34K_COLUMNS = ["majority", "lama", "lpaqa", "autoprompt_bert", "autoprompt_roberta", "ptuning", "ptuning+ptuning_lama_manual"]
COLUMN_ORDER = LAMA34K_COLUMNS
N_RELATIONS = 41  # T-REx relations of LAMA
PTUNING_LAMA_SCHEDULE = (1e-5, 100, 20)  # P-Tuning's LAMA recipe: lr, max epochs, early-stopping patience
PAPER_VOCAB_SIZE = {"lama34k": 21035, "lama29k": 18154}  # BERT's 34k list; the shared 29k list
_RANK = re.compile(r"^(?P<base>.+)-r(?P<rank>\d+)$")


def split_rank(template: str) -> tuple[str, int]:
    """``pararel-r3`` -> (``pararel``, 3); a template without a rank suffix is rank 0."""
    match = _RANK.match(str(template))
    return (match["base"], int(match["rank"])) if match else (str(template), 0)


def column_of(method: str, template: str) -> str:
    if method in ZERO_SHOT_METHODS:
        return template
    base = split_rank(template)[0]
    return method if base == METHOD_DEFAULT_TEMPLATE.get(method) else f"{method}+{base}"


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
    return column_of(row["method"], row["template"])


def row_label(row: pd.Series) -> str:
    return row["model"] if not isinstance(row["tag"], str) else f"{row['model']} [{row['tag']}]"


def protocol_flags(record: dict) -> list[str]:
    """How one run departs from the paper's LAMA protocol (empty when it follows it)."""
    config = record.get("config") or {}
    task, model = config.get("task", {}), config.get("model", {})
    flags = []
    limit = task.get("limit_per_relation")
    if limit:
        flags.append(f"at most {limit} test facts per relation (debug limit)")
    report = record.get("metrics", {}).get(record.get("report_split", "test"), {}).get("overall", {})
    n_rel = report.get("n_relations")
    if n_rel is not None and n_rel < N_RELATIONS and task.get("relations") == "all":
        extra = record.get("extra", {})
        why = [f"{rel}: {reason}" for rel, reason in (extra.get("relations_skipped") or {}).items()]
        why += [f"{rel}: no prompt in the set" for rel in extra.get("relations_without_template") or []]
        flags.append(f"{n_rel} of {N_RELATIONS} relations scored" + (f" ({'; '.join(why)})" if why else ""))
    vocab = record.get("extra", {}).get("vocabulary", {})
    variant = record.get("spec", {}).get("variant")
    if vocab.get("n_listed") and variant in PAPER_VOCAB_SIZE and vocab["n_listed"] != PAPER_VOCAB_SIZE[variant]:
        flags.append(f"{variant} facts with the {vocab['n_listed']:,}-word list {vocab.get('key')} "
                     f"(the paper's {variant} list has {PAPER_VOCAB_SIZE[variant]:,})")
    arch = model.get("arch")
    if arch == "albert":
        flags.append("ALBERT lower-cases: candidates are lower-cased words (case variants collapse)")
    if arch == "t5":
        flags.append("T5 predicts the first piece after the sentinel <extra_id_0>")
    trainer = config.get("trainer", {})
    if config.get("method", {}).get("name") == "ptuning" and trainer:
        schedule = (trainer.get("lr"), trainer.get("max_epochs"), trainer.get("early_stopping_patience"))
        if schedule != PTUNING_LAMA_SCHEDULE:
            flags.append("P-Tuning schedule lr {}, at most {} epochs, patience {} (the paper's: 1e-5, 100, 20)"
                         .format(*schedule))
    template = config.get("template", {})
    if template.get("kind") == "ptuning" and template.get("order") == "code":
        flags.append("released-code query order ([MASK] before the subject), not the paper's")
    return flags


def protocol_notes(runs_dir: Path) -> dict[str, list[str]]:
    """Record name -> protocol departures, for every finished record."""
    return {record["name"]: protocol_flags(record) for _, record in iter_records(runs_dir)}


def lama_cells(frame: pd.DataFrame, variant: str, published: pd.DataFrame,
               columns: list[str] | None = None, table: str = "lama") -> pd.DataFrame:
    """Tidy cells: model x column with ours, paper, delta (percent), counts and provenance flags."""
    report = frame[(frame["task"] == "lama") & (frame["variant"] == variant) & frame["is_report"]].copy()
    pub = published[(published["table"] == table) & (published["variant"] == variant)]
    cells = []
    if not report.empty:
        report["column"] = report.apply(column_key, axis=1)
        report["row"] = report.apply(row_label, axis=1)
        if columns is not None:
            report = report[report["column"].isin(columns)]
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
    keys = list(zip(tidy["model"], tidy["column"], strict=True))
    tidy["paper"] = [lookup[k]["value"] if k in lookup else None for k in keys]
    tidy["paper_checked"] = [lookup[k]["checked"] if k in lookup else None for k in keys]
    tidy["paper_source"] = [lookup[k]["source"] if k in lookup else None for k in keys]
    tidy["delta"] = [o - p if o is not None and p is not None and not pd.isna(o) and not pd.isna(p) else None
                     for o, p in zip(tidy["ours"], tidy["paper"], strict=True)]
    tidy["variant"] = variant
    return tidy


def _ordered(values, order: list[str]) -> list[str]:
    return sorted(set(values), key=lambda c: (order.index(c) if c in order else 99, c))


def lama_display(tidy: pd.DataFrame, flags: dict[str, list[str]] | None = None,
                 order: list[str] = COLUMN_ORDER) -> tuple[pd.DataFrame, list[str]]:
    """Wide table: one row per model; per column 'ours', 'paper' and 'Δ' where a paper number exists."""
    flags = flags or {}
    columns = _ordered(tidy["column"], order)
    notes, rows = [], []
    for row_name in sorted(tidy["row"].unique()):
        out = {"model": row_name}
        for column in columns:
            cell = tidy[(tidy["row"] == row_name) & (tidy["column"] == column)]
            has_paper = tidy[(tidy["column"] == column)]["paper"].notna().any()
            ours = cell["ours"].iloc[0] if not cell.empty else None
            record = cell["record"].iloc[0] if not cell.empty else None
            scored = ours is not None and not pd.isna(ours)
            departures = flags.get(record, []) if isinstance(record, str) and scored else []
            out[f"{column}"] = fmt(ours) + ("†" if departures else "")
            notes += [f"† {row_name} x {column}: {d}" for d in departures]
            if has_paper:
                paper = cell["paper"].iloc[0] if not cell.empty else None
                checked = cell["paper_checked"].iloc[0] if not cell.empty else None
                out[f"{column} (paper)"] = fmt(paper) + ("*" if checked == "no" else "")
                out[f"{column} Δ"] = fmt(cell["delta"].iloc[0] if not cell.empty else None, signed=True)
            if not scored:
                notes.append(f"missing: {row_name} x {column} " + (f"(record {record} scored no fact)"
                             if isinstance(record, str) else "(no finished record)"))
        rows.append(out)
    if tidy["paper_checked"].eq("no").any():
        notes.append("* published number not checked against the paper offline (results/paper/published.csv)")
    notes.append("P@1 in percent, macro over relations (mean of per-relation P@1) on the report split; "
                 "pooled and real-only (without reconstructed test facts) values are in the CSV")
    return pd.DataFrame(rows), notes


def per_relation_table(runs_dir: Path, variant: str, columns: list[str] | None = None) -> pd.DataFrame:
    groups = group_frame(runs_dir, split="test")
    if groups.empty:
        return groups
    groups = groups[(groups["task"] == "lama") & (groups["variant"] == variant)]
    if groups.empty:
        return groups
    groups = groups.assign(column=[column_of(m, t) for m, t in zip(groups["method"], groups["template"], strict=True)],
                           row=groups.apply(row_label, axis=1), p_at_1=100 * groups["p_at_1"])
    if columns is not None:
        groups = groups[groups["column"].isin(columns)]
    if groups.empty:
        return groups
    wide = groups.pivot_table(index="group", columns=["row", "column"], values="p_at_1", aggfunc="first")
    wide.columns = [f"{m} / {c}" for m, c in wide.columns]
    return wide.reset_index().rename(columns={"group": "relation"})


def write_per_relation(runs_dir: Path, out_dir: Path, variant: str, title: str, columns: list[str]) -> list[Path]:
    per_rel = per_relation_table(runs_dir, variant, columns)
    if per_rel.empty:
        return []
    display = per_rel.copy()
    for col in display.columns[1:]:
        display[col] = display[col].map(fmt)
    return write_table(out_dir, f"{variant}_per_relation", display, per_rel, f"{title} per relation",
                       ["P@1 in percent on the report split; '—': the run has no fact of that relation"])


def write_lama_tables(runs_dir: Path, out_dir: Path, published_csv: Path) -> list[Path]:
    """Every LAMA table: LAMA-34k, LAMA-29k, their per-relation tables, template sensitivity."""
    from bench.aggregate.lama29k import LAMA29K_COLUMNS, write_lama29k_table
    from bench.aggregate.sensitivity import write_sensitivity_tables

    frame = records_frame(runs_dir)
    published = load_published(published_csv)
    flags = protocol_notes(runs_dir)
    written: list[Path] = []
    tidy = lama_cells(frame, "lama34k", published, LAMA34K_COLUMNS)
    if not tidy.empty:
        display, notes = lama_display(tidy, flags)
        written += write_table(out_dir, "lama34k", display, tidy, "LAMA-34k P@1", notes)
    written += write_per_relation(runs_dir, out_dir, "lama34k", "LAMA-34k P@1", LAMA34K_COLUMNS)
    written += write_lama29k_table(frame, published, flags, out_dir)
    written += write_per_relation(runs_dir, out_dir, "lama29k", "LAMA-29k P@1", LAMA29K_COLUMNS)
    written += write_sensitivity_tables(runs_dir, published, out_dir)
    return written
