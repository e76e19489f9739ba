"""One generic builder: a spec and the record frames in, a :class:`Table` (display, tidy, notes) out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import DataError
from bench.tables.cells import (
    Cell,
    clean,
    column_of,
    fill,
    label_fields,
    pick_best,
    pick_rows,
    published_setting,
    reduce_cell,
    same_setting,
    select,
    two_stage,
)
from bench.tables.config_fields import add_config_fields, describe_points
from bench.tables.frame import PAPER_SETTING, Frames, norm_prompt
from bench.tables.gaps import coverage, mark_gaps
from bench.tables.layout import layout
from bench.tables.notes import protocol_notes

PUBLISHED_COLUMNS = ("table", "variant", "model", "column", "value", "source", "checked")


@dataclass
class Table:
    """A built table: the display frame (strings), the tidy frame (numbers) and its notes."""

    name: str
    title: str
    display: pd.DataFrame
    tidy: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    wide: bool = False
    label: str = ""
    n_labels: int = 1
    fit: str = "blocks"  # LaTeX: blocks, resize or landscape (bench.tables.latex_fit)


def load_published(path: Path) -> pd.DataFrame:
    """The published numbers (``results/paper/*.csv``): one row per cell with source and checked flag."""
    frame = pd.read_csv(path)
    missing = sorted(set(PUBLISHED_COLUMNS) - set(frame.columns))
    if missing:
        raise DataError(f"published numbers lack columns {missing}", file=path, line=1,
                        fix="keep the header table,variant,model,column,value,source,checked,note")
    bad = frame[~frame["checked"].isin(["yes", "no"])]
    if not bad.empty:
        raise DataError("checked must be yes or no", file=path, line=int(bad.index[0]) + 2, field="checked",
                        fix="write yes (checked against the paper) or no")
    return frame


def _natural(text: Any) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(text)))


def prepare(spec: dict, frames: Frames) -> pd.DataFrame:
    """The spec's frame: the split, the column key, the selection, ``_value`` (scaled metric) and the
    ``keep`` numbers (their frame columns are recorded in ``spec["_keep"]``)."""
    frame = (frames.records if spec["source"] == "records" else frames.groups).copy()
    split = spec["split"]
    if frame.empty:
        return frame.assign(_value=pd.Series(dtype=float), column=pd.Series(dtype=object))
    if split == "report":
        frame = frame[frame["is_report"].astype(bool)]
    elif split == "selection":
        frame = frame[frame["is_selection"].astype(bool)]
    else:
        frame = frame[frame["split"] == split]
    frame = add_config_fields(frame, spec, frames.by_name)  # dotted config keys the spec uses (trainer.lr)
    if "column_key" in spec:
        frame["column"] = [column_of(row, spec["column_key"]) for row in frame.to_dict("records")]
    frame = select(frame, spec["select"])
    metric, scale = spec["value"]["metric"], spec["value"]["scale"]
    values = pd.to_numeric(frame[metric], errors="coerce") if metric in frame.columns else float("nan")
    frame = frame.assign(_value=values * scale)
    keep = {}
    for name, item in spec["keep"].items():
        item = item if isinstance(item, dict) else {"metric": item, "scale": 1}
        column = f"_keep_{name}"
        source = frame[item["metric"]] if item["metric"] in frame.columns else float("nan")
        frame[column] = pd.to_numeric(source, errors="coerce") * item.get("scale", 1)
        keep[name] = column
    spec["_keep"] = keep
    return frame


def _key(row: dict, fields: list[str]) -> tuple:
    return tuple(clean(row.get(f)) for f in fields)


def split_scores(frames: Frames, split: str, metric: str) -> dict[str, float]:
    """Record path -> ``metric`` on ``split`` (``selection`` = each record's own selection split)."""
    rec = frames.records
    if rec.empty:
        return {}
    rows = rec[rec["is_selection"].astype(bool)] if split == "selection" else rec[rec["split"] == split]
    if metric not in rows.columns:
        return {}
    return {p: float(v) for p, v in zip(rows["path"], rows[metric], strict=True) if clean(v) is not None}


def grid_scores(spec: dict, frames: Frames) -> dict[str, float]:
    """Record path -> the grid metric on the grid split."""
    grid = spec.get("grid")
    return split_scores(frames, grid.get("split", "selection"), grid["metric"]) if grid else {}


def build_table(spec: dict, frames: Frames, published: pd.DataFrame | None = None) -> Table | None:
    """Build one table; None when no record and no published number falls in it."""
    frame = prepare(spec, frames)
    by, groups_by = spec["rows"]["by"], (spec.get("column_groups") or {}).get("by", [])
    records = frame.to_dict("records")
    frame["_row"] = [_key(r, by) for r in records]
    frame["_group"] = [_key(r, groups_by) for r in records]
    samples = {}
    for r, k, g in zip(records, frame["_row"], frame["_group"], strict=True):
        samples.setdefault(("row", k), r)
        samples.setdefault(("group", g), r)
    pub = _published(spec, published)
    scores = grid_scores(spec, frames)
    best = spec.get("best")
    best_scores = split_scores(frames, best["split"], best["metric"]) if best else {}

    # column groups
    group_frame = select(frame, (spec.get("column_groups") or {}).get("select"))
    group_keys = sorted(set(group_frame["_group"]), key=lambda g: fill(
        (spec.get("column_groups") or {}).get("label", ""), samples[("group", g)]))
    if not groups_by:
        group_keys = [()]

    # cells, entry by entry (``within`` may read an earlier entry)
    cells: dict[tuple[str, tuple, tuple], Cell] = {}
    created_rows: list[tuple] = []
    for column in spec["columns"]:
        rows = select(frame, column.get("select")) if "select" in column else (
            frame[frame["column"].isin(column["keys"])] if "keys" in column else frame[frame["column"] == column["key"]])
        if "metric" in column and not rows.empty:  # a column's own metric (e.g. CB accuracy beside its F1)
            own = pd.to_numeric(rows[column["metric"]], errors="coerce") if column["metric"] in rows.columns else float("nan")
            rows = rows.assign(_value=own * spec["value"]["scale"])
        join = column.get("join", by)
        if join == by:
            created_rows += list(rows["_row"])
        jkey = [_key(r, join) for r in rows.to_dict("records")] if not rows.empty else []
        rows = rows.assign(_join=jkey) if not rows.empty else rows.assign(_join=pd.Series(dtype=object))
        for group in group_keys:
            part_g = rows[rows["_group"] == group] if groups_by else rows
            for jk, part in part_g.groupby("_join", sort=False):
                for row_key in _rows_for(jk, join, by, created_rows):
                    _fill_cell(spec, column, cells, row_key, group, part, scores, best_scores)
    row_keys = _row_order(spec, frame, created_rows, pub, cells, samples)
    extra_rows = []
    for i, extra in enumerate(spec["rows"].get("extra", [])):
        key = ("__extra__", i)
        extra_rows.append((key, extra["label"]))
        rows = select(frame, extra.get("select"))
        for group in group_keys:
            part = rows[rows["_group"] == group] if groups_by else rows
            if not part.empty:
                cells[(spec["columns"][0]["key"], key, group)] = reduce_cell(part, spec["_keep"], spec.get("grid"),
                                                                             scores)
    if not row_keys and not extra_rows:
        return None
    if frame.empty and (pub is None or pub.empty):
        return None
    gap_notes = mark_gaps(spec, cells, frames.problems)
    for cell in cells.values():
        if cell.mixed:
            cell.config_text = describe_points(cell.points, frames.by_name)
    departures = {name: protocol_notes(frames.by_name[name], spec.get("protocol_notes"))
                  for cell in cells.values() for name in cell.records if name in frames.by_name}
    display, tidy, notes, wide = layout(spec, row_keys, extra_rows, group_keys, cells, pub, samples, departures)
    notes += gap_notes
    title = spec["title"]
    return Table(spec["name"], title, display, tidy, notes, wide, spec.get("label") or f"tab:{spec['name']}",
                 len(spec["rows"]["labels"]), spec.get("fit", "blocks"))


def _rows_for(jk: tuple, join: list[str], by: list[str], created: list[tuple]) -> list[tuple]:
    """Row keys a cell of partial ``join`` fills: every row created so far that agrees on those fields."""
    if join == by:
        return [jk]
    index = [by.index(f) for f in join]
    return [k for k in dict.fromkeys(created) if tuple(k[i] for i in index) == jk]


def _fill_cell(spec: dict, column: dict, cells: dict, row_key: tuple, group: tuple, part: pd.DataFrame,
               scores: dict, best_scores: dict) -> None:
    part, chosen = pick_rows(part, column)
    part, best = pick_best(part, spec.get("best"), best_scores)
    if part.empty:
        return
    within = column.get("within")
    ref = cells.get((within, row_key, group)) if within else None
    if within and (ref is None or (not ref.per_values and ref.value is None)):
        return
    if "per" in column:
        allowed = set(ref.per_values) if ref is not None and ref.per_values else None
        cell = two_stage(part, column, spec["_keep"], spec.get("grid"), scores, allowed)
    else:
        cell = reduce_cell(part, spec["_keep"], spec.get("grid"), scores)
    cell.key, cell.best = chosen or column["key"], best
    cell.coverage = coverage(part)
    cells[(column["key"], row_key, group)] = cell


def _row_order(spec: dict, frame: pd.DataFrame, created: list[tuple], pub: pd.DataFrame | None,
               cells: dict, samples: dict) -> list[tuple]:
    rows_spec = spec["rows"]
    source = rows_spec.get("from")
    keys: list[tuple] = []
    if source:
        if source.get("published") and pub is not None:
            keys += [(k,) for k in pub["_rowkey"]]
        part = select(frame, source.get("select"))
        if "order" in source and not part.empty:
            part = part.sort_values(source["order"], kind="stable")
        keys += list(part["_row"])
        keys = list(dict.fromkeys(keys))
    else:
        keys = list(dict.fromkeys(created))
        keys += _published_rows(spec, pub, cells, keys)
        keys = list(dict.fromkeys(keys))
    sort = rows_spec.get("sort", "label" if not source else "none")
    if sort != "none":
        first_label = next(iter(rows_spec["labels"].values()))
        keys.sort(key=lambda k: _natural(fill(first_label, label_fields(spec, k, samples.get(("row", k))))))
    return keys


def _published(spec: dict, published: pd.DataFrame | None) -> pd.DataFrame | None:
    conf = spec.get("published")
    if conf is None or published is None:
        return None
    pub = published[(published["table"] == conf["table"]) & (published["variant"] == conf.get("variant"))].copy()
    if conf.get("normalise") == "prompt":
        pub["_rowkey"] = pub["column"].map(norm_prompt)
    else:
        pub["_rowkey"] = pub["model"]
    return pub


def _published_rows(spec: dict, pub: pd.DataFrame | None, cells: dict, keys: list[tuple]) -> list[tuple]:
    """Rows the paper has and we lack (model x column with no record): shown with the paper's number."""
    if pub is None or pub.empty or "model" not in spec["rows"]["by"]:
        return []
    by = spec["rows"]["by"]
    columns = {c["key"]: c.get("keys", [c["key"]]) for c in spec["columns"]}
    setting = {**PAPER_SETTING, **published_setting(spec)}  # the paper's rows run the published numbers' setting
    out = []
    for _, p in pub.iterrows():
        wanted = [k for k, keys_of in columns.items() if p["column"] in keys_of]
        if not wanted:
            continue
        have = any(c[0] in wanted and c[1][by.index("model")] == p["model"] and cell.records
                   and same_setting(spec, dict(zip(by, c[1], strict=True))) for c, cell in cells.items())
        if not have:
            out.append(tuple(p["model"] if f == "model" else setting.get(f) for f in by))
    return out
