"""The LAMA-29k table of the P-Tuning paper: MP, AutoPrompt, FT, MP+FT, PT per model, and PT's gain over MP.

A cell reads ``ours / paper (Δ)``; the CSV keeps every number apart (tidy, one row per cell).
Columns come from :func:`bench.aggregate.lama_tables.column_of`: MP = manual ``lama`` prompts,
AutoPrompt = ``autoprompt_bert`` / ``autoprompt_roberta`` (whichever the row's model has),
FT = ``lm_finetune`` (bare query), MP+FT = ``lm_finetune+lama``, PT = ``ptuning``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.aggregate.lama_tables import lama_cells
from bench.aggregate.render import fmt, write_table

# display label -> column keys that fill it (first found wins)
LAMA29K_LAYOUT: dict[str, list[str]] = {
    "MP": ["lama"], "AutoPrompt": ["autoprompt_bert", "autoprompt_roberta"], "FT": ["lm_finetune"],
    "MP+FT": ["lm_finetune+lama"], "PT": ["ptuning"],
}
LAMA29K_COLUMNS = [key for keys in LAMA29K_LAYOUT.values() for key in keys]
GAIN = ("PT", "MP")  # the paper's "(+x)" beside PT: PT minus MP


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _cell_text(ours: float | None, paper: float | None, checked: object, dagger: bool) -> str:
    text = fmt(ours) + ("†" if dagger and ours is not None else "")
    if paper is None:
        return text
    star = "*" if checked == "no" else ""
    delta = fmt(ours - paper, signed=True) if ours is not None else "—"
    return f"{text} / {fmt(paper)}{star} ({delta})"


def _pick(cells: pd.DataFrame, keys: list[str]) -> pd.Series | None:
    for key in keys:
        found = cells[cells["column"] == key]
        if not found.empty:
            return found.iloc[0]
    return None


def lama29k_display(tidy: pd.DataFrame, flags: dict[str, list[str]]) -> tuple[pd.DataFrame, list[str]]:
    rows, notes = [], []
    for row_name in sorted(tidy["row"].unique()):
        cells = tidy[tidy["row"] == row_name]
        out: dict[str, str] = {"model": row_name}
        values: dict[str, tuple[float | None, float | None, object]] = {}
        for label, keys in LAMA29K_LAYOUT.items():
            cell = _pick(cells, keys)
            if cell is None:
                out[label] = "—"
                values[label] = (None, None, None)
                if label != "AutoPrompt":  # the paper has AutoPrompt for two models only
                    notes.append(f"missing: {row_name} x {label} (no finished record)")
                continue
            ours, paper = _num(cell["ours"]), _num(cell["paper"])
            record = cell["record"] if isinstance(cell["record"], str) else None
            departures = flags.get(record, []) if record and ours is not None else []
            notes += [f"† {row_name} x {label}: {d}" for d in departures]
            out[label] = _cell_text(ours, paper, cell["paper_checked"], bool(departures))
            values[label] = (ours, paper, cell["paper_checked"])
            if ours is None:
                notes.append(f"missing: {row_name} x {label} " + (f"(record {record} scored no fact)" if record
                                                                   else "(no finished record)"))
        (pt, pt_paper, pt_checked), (mp, mp_paper, mp_checked) = values[GAIN[0]], values[GAIN[1]]
        gain = pt - mp if pt is not None and mp is not None else None
        gain_paper = pt_paper - mp_paper if pt_paper is not None and mp_paper is not None else None
        checked = "no" if "no" in (pt_checked, mp_checked) else "yes"
        out["PT−MP"] = _cell_text(gain, gain_paper, checked, False)
        rows.append(out)
    if tidy["paper_checked"].eq("no").any():
        notes.append("* published number not checked against the paper offline (results/paper/published.csv)")
    notes += ["cells: ours / paper (ours − paper); P@1 in percent, macro over relations, test split",
              "MP: manual LAMA prompt, frozen; FT: backbone fine-tuned on the bare query; MP+FT: fine-tuned with "
              "the manual prompt; PT: P-Tuning, frozen backbone; PT−MP: the paper's gain column"]
    return pd.DataFrame(rows), notes


def write_lama29k_table(frame: pd.DataFrame, published: pd.DataFrame, flags: dict[str, list[str]],
                        out_dir: Path) -> list[Path]:
    tidy = lama_cells(frame, "lama29k", published, LAMA29K_COLUMNS)
    if tidy.empty:
        return []
    display, notes = lama29k_display(tidy, flags)
    return write_table(out_dir, "lama29k", display, tidy, "LAMA-29k P@1", notes)
