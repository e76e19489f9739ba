"""Lay cells out: the display frame (formatted text, marks), the tidy frame (numbers) and the notes.

Marks: ``†`` the record departs from the paper's protocol (a note says how), ``‡`` the cell holds
several configurations and the spec declares no ``grid`` pick, ``*`` a published number not checked
against the paper. Missing cells read "—"; the notes group them by row instead of listing each.
"""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd

from bench.tables.cells import Cell, clean, fill, label_fields, same_setting

DASH = "—"
WIDE_COLUMNS, WIDE_CHARS = 7, 100  # more columns, or wider rows (characters), than this -> ``table*``


def fmt(value: Any, digits: int = 1, signed: bool = False) -> str:
    value = clean(value)
    if value is None:
        return DASH
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def show(template: str, cell: Cell | None, digits: int) -> str:
    if cell is None:
        return DASH
    stats = {k: (fmt(v, digits) if k != "n" else str(int(v or 0))) for k, v in cell.stats.items()}
    return template.format(**stats, ids=", ".join(cell.ids) or DASH)  # ids: record config ids, as status prints


def _paper(spec: dict, pub: pd.DataFrame | None, row_key: tuple, keys: list[str]) -> dict | None:
    if pub is None or pub.empty or isinstance(row_key[0], str) and row_key[0] == "__extra__":
        return None
    conf = spec["published"]
    if conf.get("normalise") == "prompt" or "row" in (conf.get("match") or {}):
        hit = pub[pub["_rowkey"] == row_key[0]]
    else:
        if not same_setting(spec, dict(zip(spec["rows"]["by"], row_key, strict=False))):
            return None  # a row run under another setting than the published numbers' stands beside none
        model = row_key[spec["rows"]["by"].index("model")]
        hit = pub.iloc[0:0]
        for key in keys:
            hit = pub[(pub["model"] == model) & (pub["column"] == key)]
            if not hit.empty:
                break
    if hit.empty:
        return None
    p = hit.iloc[0]
    return {"value": float(p["value"]), "checked": p["checked"], "source": p["source"], "model": p["model"],
            "column": p["column"], "metric": clean(p.get("metric"))}


def check_paper_metric(spec: dict, column: dict, paper: dict) -> None:
    """A published number stands beside ours only on its own metric (``metric`` in results/paper/*.csv)."""
    theirs = paper.get("metric")
    if theirs is None:
        return
    ours = str(column.get("metric") or spec["value"]["metric"]).rsplit(".", 1)[-1]
    if ours != theirs:
        from bench.errors import ConfigError

        raise ConfigError(f"table {spec['name']}, column {column['key']}: the published {paper['model']} "
                          f"{paper['column']} = {paper['value']} is {theirs}, the cell would show {ours}\n"
                          f"  fix: give the column `metric: overall.{theirs}` (conf/tables) or correct the "
                          "metric in results/paper")


def _paper_text(paper: dict | None, digits: int) -> str:
    if paper is None:
        return DASH
    return fmt(paper["value"], digits) + ("*" if paper["checked"] == "no" else "")


def _unavailable(spec: dict, column: dict, row_key: Any) -> str | None:
    """``unavailable``: a dotted ``f(fields) -> reason | None`` for cells without records (e.g. "missing data")."""
    name = spec.get("unavailable")
    if not name:
        return None
    module, _, attr = str(name).rpartition(".")
    fields = {**(spec.get("select") or {}), **(column.get("select") or {})}
    if column.get("key"):
        fields.setdefault("column", column["key"])  # e.g. "snli:demo": the task of a mixed-task table's column
    if isinstance(row_key, tuple):
        fields.update(zip(spec["rows"]["by"], row_key, strict=False))
    return getattr(importlib.import_module(module), attr)(fields)


def layout(spec: dict, row_keys: list[tuple], extra_rows: list, group_keys: list[tuple], cells: dict,
           pub: pd.DataFrame | None, samples: dict, departures: dict[str, list[str]]):
    digits = spec["value"]["digits"]
    conf = spec.get("published") or {}
    mode = conf.get("show") if pub is not None else None
    gconf = spec.get("column_groups") or {}
    labels = spec["rows"]["labels"]
    columns = spec["columns"]
    marks_used: dict[str, list[str]] = {"†": [], "‡": []}
    missing: dict[str, dict[str, list[str]]] = {}
    unchecked = False

    def group_label(group: tuple) -> str:
        return fill(gconf.get("label", ""), samples.get(("group", group), {})) if gconf else ""

    def visible(column: dict, group: tuple) -> bool:
        if column.get("show_empty", spec["show_empty_columns"]):  # a column's own show_empty wins
            return True
        if any(k[0] == column["key"] and k[2] == group for k in cells):
            return True
        keys = column.get("keys", [column["key"]])
        return mode in ("beside", "inline") and bool(pub["column"].isin(keys).any())

    def has_paper(column: dict) -> bool:
        return mode == "beside" and bool(pub["column"].isin(column.get("keys", [column["key"]])).any())

    paper_models = sorted(set(pub["model"])) if mode == "column" and not pub.empty else []
    layout_cols = [(g, c) for g in group_keys for c in columns if visible(c, g)]
    display_rows, tidy_rows = [], []
    all_rows = [(k, None) for k in row_keys] + list(extra_rows)
    for row_key, extra_label in all_rows:
        fields = label_fields(spec, row_key, samples.get(("row", row_key))) if extra_label is None else {}
        paper_row = _paper(spec, pub, row_key, []) if mode == "column" else None
        if paper_row is not None and conf.get("label_field"):
            fields = {**fields, conf["label_field"]: paper_row["column"]}
        out = {h: (fill(f, fields) if extra_label is None else (extra_label if i == 0 else ""))
               for i, (h, f) in enumerate(labels.items())}
        row_name = " / ".join(str(v) for v in out.values() if v)
        if mode == "column":
            out[f"paper ({', '.join(paper_models) or DASH})"] = _paper_text(paper_row, digits)
            unchecked |= paper_row is not None and paper_row["checked"] == "no"
        values: dict[tuple[str, tuple], tuple] = {}
        for group in group_keys:
            glabel = group_label(group)
            for column in [c for g, c in layout_cols if g == group]:
                cell = cells.get((column["key"], row_key, group))
                header = _header(glabel, column["label"])
                text = show(column["show"], cell, digits) if cell is not None and cell.records else DASH
                gap = _unavailable(spec, column, row_key) if text == DASH and extra_label is None else None
                if gap:
                    text = gap
                notes_of = sorted({d for n in (cell.records if cell else []) for d in departures.get(n, [])})
                if cell is not None and cell.value is not None and notes_of:
                    text += "†"
                    marks_used["†"] += [(d, f"{row_name} x {header}") for d in notes_of]
                if cell is not None and cell.chosen_config is not None:
                    marks_used.setdefault("grid", []).append(header)
                if cell is not None and cell.mixed:
                    text += "‡"
                    marks_used["‡"].append(f"{row_name} x {header}: "
                                           + (cell.config_text or f"configurations {', '.join(cell.configs)}"))
                if cell is not None and cell.records and cell.gaps:
                    text += "§"
                    marks_used.setdefault("§", []).append(f"{row_name} x {header}: {'; '.join(cell.gaps)}")
                paper = None
                if mode in ("beside", "inline"):
                    keys = [cell.key] if cell is not None and cell.key else column.get("keys", [column["key"]])
                    paper = _paper(spec, pub, row_key, keys)
                    if paper is not None:
                        check_paper_metric(spec, column, paper)
                elif mode == "column":  # only beside a column group run under the published numbers' setting
                    paper = paper_row if same_setting(spec, samples.get(("group", group), {})) else None
                ours = cell.value if cell is not None else None
                delta = ours - paper["value"] if ours is not None and paper is not None else None
                if mode == "column" and paper is not None and samples.get(("group", group), {}).get("model") != \
                        paper["model"]:
                    delta = None
                values[(column["key"], group)] = (ours, paper)
                if mode == "inline" and paper is not None:
                    text = f"{text} / {_paper_text(paper, digits)} ({fmt(delta, digits, signed=True)})"
                out[header] = text
                if has_paper(column):
                    out[f"{header} (paper)"] = _paper_text(paper, digits)
                    out[f"{header} Δ"] = fmt(delta, digits, signed=True)
                if paper is not None and mode != "column" and paper["checked"] == "no":
                    unchecked = True
                if (ours is None and extra_label is None and column["missing_note"] and spec["missing_notes"]):
                    why = "no finished record" if cell is None or not cell.records else "the record scored nothing"
                    if gap:
                        why = f"{gap}: the prepared data lacks a split these runs need ({spec['unavailable']})"
                    missing.setdefault(why, {}).setdefault(row_name, []).append(header)
                if cell is not None or paper is not None:
                    tidy_rows += _tidy(spec, out, labels, glabel, column, cell, paper, delta)
            if mode == "column" and conf.get("delta") == "same_model" and \
                    samples.get(("group", group), {}).get("model") in paper_models:
                ours, paper = values.get((columns[0]["key"], group), (None, None))
                same = paper is not None and samples[("group", group)]["model"] == paper["model"]
                out[f"{glabel} Δ"] = fmt(ours - paper["value"] if same and ours is not None else None, digits,
                                         signed=True)
        for derived in spec["derived"]:
            text, rows = _derived(derived, values, group_keys, digits, mode)
            out[derived["label"]] = text
            tidy_rows += [{**r, **{h: out[h] for h in labels}, "table": spec["name"]} for r in rows]
        display_rows.append(out)
    if group_keys == [] or (gconf and not group_keys):
        missing.setdefault("no record yet; only the published numbers are shown", {})
    notes = _notes(spec, marks_used, missing, unchecked)
    display = pd.DataFrame(display_rows)
    widths = sum(max([len(str(c)), *display[c].astype(str).str.len()]) for c in display.columns)
    wide = bool(spec.get("wide", len(display.columns) > WIDE_COLUMNS or widths > WIDE_CHARS))
    return display, pd.DataFrame(tidy_rows), notes, wide


def _header(group_label: str, label: str) -> str:
    if not group_label:
        return label
    return group_label if not label else f"{group_label}: {label}"


def _tidy(spec, out, labels, glabel, column, cell, paper, delta) -> list[dict]:
    base = {"table": spec["name"], **{h: out[h] for h in labels}, "group": glabel, "column": column["key"],
            "column_label": column["label"], "key": cell.key if cell else None}
    paper_fields = {"paper": paper["value"] if paper else None, "paper_checked": paper["checked"] if paper else None,
                    "paper_source": paper["source"] if paper else None,
                    "paper_model": paper["model"] if paper else None, "delta": delta}
    stats = {k: (cell.stats.get(k) if cell else None) for k in ("value", "mean", "std", "pstd", "min", "max", "n",
                                                                  "median", "first", "range")}
    rows = [{**base, **stats, **paper_fields, **{f"ours_{k}": (cell.keep.get(k) if cell else None) for k in spec.get("_keep", {})},
             "records": ";".join(cell.records) if cell else None, "mixed": bool(cell.mixed) if cell else False,
             "config_hash": _ids(cell.ids) if cell and cell.ids else None, "selected": True,
             "best": cell.best if cell else None}]
    for point in (cell.points if cell else []):
        if cell.chosen_config is not None and point["config_hash"] not in cell.chosen_config.split(";"):
            rows.append({**base, **{k: point.get(k) for k in stats}, "config_hash": _ids(point.get("ids")),
                         "grid_score": point["grid_score"], "selected": False})
    return rows


def _ids(ids) -> str | None:
    """Record config ids (the hash ending a record's name, as ``bench.study status`` prints it), ";"-joined."""
    return ";".join(ids) if ids else None


def _derived(derived: dict, values: dict, group_keys: list[tuple], digits: int, mode: str | None):
    a_key, b_key = derived["minus"]
    group = group_keys[0] if group_keys else ()
    (a, pa), (b, pb) = values.get((a_key, group), (None, None)), values.get((b_key, group), (None, None))
    ours = a - b if a is not None and b is not None else None
    paper = pa["value"] - pb["value"] if pa is not None and pb is not None else None
    checked = "no" if any(p is not None and p["checked"] == "no" for p in (pa, pb)) else "yes"
    text = fmt(ours, digits)
    if mode == "inline" and paper is not None:
        star = "*" if checked == "no" else ""
        delta = fmt(ours - paper, digits, signed=True) if ours is not None else DASH
        text = f"{text} / {fmt(paper, digits)}{star} ({delta})"
    row = {"column": derived["key"], "column_label": derived["label"], "value": ours, "mean": ours,
           "paper": paper, "paper_checked": checked if paper is not None else None,
           "delta": ours - paper if ours is not None and paper is not None else None, "selected": True}
    return text, [row]


def _notes(spec: dict, marks: dict, missing: dict, unchecked: bool) -> list[str]:
    notes = []
    by_note: dict[str, list[str]] = {}
    for text, where in marks["†"]:
        by_note.setdefault(text, []).append(where)
    notes += [f"† {text}: {'; '.join(dict.fromkeys(where))}" for text, where in by_note.items()]
    if marks["‡"]:
        notes.append("‡ several configurations share the cell (averaged; declare grid: in the spec to pick one): "
                     + "; ".join(marks["‡"]))
    if marks.get("§"):
        notes.append("§ the cell lacks part of its data (its value is over what there is): " + "; ".join(marks["§"]))
    if spec.get("grid") and marks.get("grid"):
        g = spec["grid"]
        per = f" within each {', '.join(g['per'])}" if g.get("per") else ""
        notes.append(f"each cell keeps the configuration with the {g['select']} {g['metric']} on the "
                     f"{g.get('split', 'selection')} split{per}; the CSV lists every configuration")
    for why, rows in missing.items():
        listed = "; ".join(f"{row}: {', '.join(cols)}" for row, cols in rows.items())
        notes.append(f"{DASH} {why}" + (f": {listed}" if listed else ""))
    if unchecked:
        notes.append("* published number not checked against the paper offline (results/paper/published.csv)")
    return notes + list(spec["notes"])
