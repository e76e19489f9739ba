"""Cells of a table: select records, key them, reduce over seeds / prompt ranks / configurations.

A cell is one (row, column group, column) of a spec. Its records are reduced to ``mean``, ``std``
(sample), ``min``, ``max``, ``n``, ``median``, ``first`` (rank-0 prompt) and ``range``. Records of
the same cell that differ by ``config_hash`` (a hyperparameter grid) are never averaged silently:
the spec's ``grid`` picks one configuration by a metric on a split, else the cell is marked ``‡``.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.tables.frame import PAPER_SETTING


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def clean(value: Any) -> Any:
    return None if is_missing(value) else value


def matches(value: Any, wanted: Any) -> bool:
    """Select semantics: a list is any-of; ``None`` / ``none`` match a missing value."""
    if isinstance(wanted, list):
        return any(matches(value, w) for w in wanted)
    if wanted is None or wanted == "none":
        return is_missing(value)
    if is_missing(value):
        return False
    return value == wanted or str(value) == str(wanted)


def select(frame: pd.DataFrame, conditions: dict[str, Any] | None) -> pd.DataFrame:
    """Rows of ``frame`` whose fields match every condition (an absent field matches nothing)."""
    if not conditions or frame.empty:
        return frame
    mask = pd.Series(True, index=frame.index)
    for key, wanted in conditions.items():
        if key not in frame.columns:
            return frame.iloc[0:0]
        mask &= frame[key].map(lambda v, w=wanted: matches(v, w))
    return frame[mask]


class _WholeNames(string.Formatter):
    """``{trainer.lr}`` names the field ``trainer.lr`` (str.format would read attribute ``lr`` of ``trainer``);
    a missing or null field renders as an empty string, a format spec it cannot take as plain text."""

    def get_field(self, field_name, args, kwargs):
        return kwargs.get(field_name, ""), field_name

    def format_field(self, value, format_spec):
        try:
            return super().format_field(value, format_spec)
        except (TypeError, ValueError):
            return str(value)


def fill(template: str, fields: dict[str, Any]) -> str:
    """``str.format`` over whole (dotted) field names; a missing or null field renders as an empty string."""
    return _WholeNames().vformat(template, (), {k: ("" if is_missing(v) else v) for k, v in fields.items()})


def column_of(row: dict[str, Any], rules: list[dict]) -> str | None:
    """The first rule whose ``when`` matches names the column key (``key`` is a format of fields)."""
    for rule in rules:
        if all(matches(row.get(k), v) for k, v in (rule.get("when") or {}).items()):
            return fill(rule["key"], row)
    return None


@dataclass
class Cell:
    """Reduced numbers of one cell plus where they came from."""

    stats: dict[str, Any] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    chosen_config: str | None = None
    mixed: bool = False
    key: str | None = None  # the column key that filled it (entries with several ``keys``)
    keep: dict[str, Any] = field(default_factory=dict)
    per_values: dict[Any, float] = field(default_factory=dict)  # two-stage cells: value per group
    points: list[dict[str, Any]] = field(default_factory=list)  # every configuration's stats (grid)
    best: str | None = None  # ``best``: which group was kept, e.g. "rank=2 (dev32 0.8125)"
    coverage: dict[tuple, set[str]] = field(default_factory=dict)  # (preset, seed) -> grid points (tables.gaps)
    gaps: list[str] = field(default_factory=list)  # missing seeds / grid points / unreadable records (§)
    ids: list[str] = field(default_factory=list)  # the record config ids (bench.identity.config_hash) shown
    config_text: str | None = None  # the ‡ cell's configurations: differing keys and record config ids

    @property
    def value(self) -> float | None:
        return clean(self.stats.get("value"))


def stats_of(rows: pd.DataFrame) -> dict[str, Any]:
    values = rows["_value"].dropna().astype(float)
    n = int(len(values))
    out: dict[str, Any] = {"n": n, "mean": None, "std": None, "pstd": None, "min": None, "max": None,
                           "median": None, "first": None, "range": None}
    if n:  # std: sample (n - 1); pstd: population (n), numpy's default (LM-BFF's tools/gather_result.py)
        out.update(mean=float(values.mean()), min=float(values.min()), max=float(values.max()),
                   median=float(values.median()), std=float(values.std(ddof=1)) if n > 1 else None,
                   pstd=float(values.std(ddof=0)) if n > 1 else None)
        out["range"] = out["max"] - out["min"]
        first = rows[(rows["rank"].fillna(0) == 0)]["_value"].dropna()
        out["first"] = float(first.mean()) if len(first) else None
    out["value"] = out["mean"]
    return out


def _config(value: Any) -> str:
    return "" if is_missing(value) else str(value)


def _pick_per(rows: pd.DataFrame, grid: dict, scores: dict[str, float]) -> tuple[pd.DataFrame, list[str]]:
    """``grid.per``: the best configuration within each group (e.g. each seed = data split); ties keep the
    first in config-hash order, or with ``grid.tie: record`` the lowest ``extra.tie_order`` the records
    carry (e.g. LM-BFF's trial order). Groups without a scored configuration keep all their records."""
    kept, chosen = [], []
    for _, part in rows.groupby(list(grid["per"]), sort=True, dropna=False):
        configs = sorted({_config(c) for c in part["config_hash"]})
        if grid.get("tie") == "record" and "tie_order" in part.columns:
            order = pd.to_numeric(part["tie_order"], errors="coerce").groupby(part["config_hash"].map(_config)).min()
            configs.sort(key=lambda c: order.get(c) if pd.notna(order.get(c)) else float("inf"))  # stable
        scored = [(c, [scores[n] for n in part.loc[part["config_hash"].map(_config) == c, "path"] if n in scores])
                  for c in configs]
        scored = [(c, sum(v) / len(v)) for c, v in scored if v]
        if not scored:
            kept.append(part)
            continue
        pick = (max if grid["select"] == "max" else min)(scored, key=lambda cv: cv[1])[0]
        chosen.append(pick)
        kept.append(part[part["config_hash"].map(_config) == pick])
    return pd.concat(kept), chosen


def reduce_cell(rows: pd.DataFrame, keep: dict[str, str], grid: dict | None, scores: dict[str, float]) -> Cell:
    """Reduce one cell's records (rows of the frame): grid pick or ``‡`` across configs, then stats."""
    by = "grid_hash" if "grid_hash" in rows.columns else "config_hash"  # seed and rank are reduced over, not a grid
    configs = sorted({_config(c) for c in rows[by]})
    cell = Cell(configs=[c for c in configs if c])
    if len(configs) > 1:
        points = []
        for config in configs:
            part = rows[rows[by].map(_config) == config]
            score = [scores.get(n) for n in part["path"]]
            score = [s for s in score if s is not None]
            points.append({"config_hash": config or None, **stats_of(part), "names": list(part["name"]),
                           "ids": sorted({_config(c) for c in part["config_hash"]} - {""}),
                           "grid_score": sum(score) / len(score) if score else None})
        cell.points = points
        if grid and grid.get("per"):
            rows, chosen = _pick_per(rows, grid, scores)
            cell.chosen_config = ";".join(chosen) or None
            cell.mixed = len({_config(c) for c in rows["config_hash"]}) > len(chosen) and not chosen
        elif grid:
            scored = [p for p in points if p["grid_score"] is not None]
            if scored:
                pick = (max if grid["select"] == "max" else min)(scored, key=lambda p: p["grid_score"])
                cell.chosen_config = pick["config_hash"]
                rows = rows[rows[by].map(_config) == (pick["config_hash"] or "")]
            else:
                cell.mixed = True
        else:
            cell.mixed = True
    cell.stats = stats_of(rows)
    cell.records = list(dict.fromkeys(rows["name"]))
    cell.ids = sorted({_config(c) for c in rows["config_hash"]} - {""})  # record config ids of what is shown
    for name, column in keep.items():
        if column in rows.columns:
            kept = pd.to_numeric(rows[column], errors="coerce").dropna()
            cell.keep[name] = float(kept.mean()) if len(kept) else None
        else:
            cell.keep[name] = None
    return cell


def pick_best(rows: pd.DataFrame, best: dict | None, scores: dict[str, float]) -> tuple[pd.DataFrame, str | None]:
    """``best: {by, split, metric}``: only the records of the ``by`` value (e.g. a PET pattern's rank)
    whose mean metric on ``split`` is highest (PET-best); ties keep the lowest value; groups with no
    score on that split never win, and a cell with none scored stays empty."""
    if not best or rows.empty:
        return rows, None
    means = {}
    for value, part in rows.groupby(best["by"], sort=True):
        got = [scores[p] for p in part["path"] if p in scores]
        if got:
            means[value] = sum(got) / len(got)
    if not means:
        return rows.iloc[0:0], None
    top = max(means.values())
    pick = min(v for v, m in means.items() if m == top)
    return rows[rows[best["by"]] == pick], f"{best['by']}={pick} ({best['split']} {top:.4f})"


def pick_rows(rows: pd.DataFrame, column: dict, key_field: str = "column") -> tuple[pd.DataFrame, str | None]:
    """Apply an entry's ``keys`` (first key with records), ``prefer`` and ``lowest`` to a cell's rows."""
    chosen = None
    if "keys" in column:
        for key in column["keys"]:
            part = rows[rows[key_field] == key] if key_field in rows.columns else rows.iloc[0:0]
            if not part.empty:
                rows, chosen = part, key
                break
        else:
            rows = rows.iloc[0:0]
    if column.get("prefer") and not rows.empty:
        preferred = select(rows, column["prefer"])
        if not preferred.empty:
            rows = preferred
    if column.get("lowest") and not rows.empty:
        rows = rows[rows[column["lowest"]] == rows[column["lowest"]].min()]
    return rows, chosen


def two_stage(rows: pd.DataFrame, column: dict, keep: dict, grid: dict | None, scores: dict,
              allowed: set | None) -> Cell:
    """``per: [group]``: reduce per group, take ``stat``, then ``mean`` (or ``count``) over groups."""
    per = column["per"]
    values: dict[Any, float] = {}
    names: list[str] = []
    mixed = False
    for key, part in rows.groupby(per, sort=True, dropna=False):
        key = key[0] if isinstance(key, tuple) and len(key) == 1 else key
        if allowed is not None and key not in allowed:
            continue
        sub = reduce_cell(part, {}, grid, scores)
        mixed |= sub.mixed
        names += sub.records
        value = clean(sub.stats.get(column.get("stat", "value")))
        if value is not None:
            values[key] = float(value)
    n = len(values)
    if column.get("then", "mean") == "count":
        value: float | None = float(n)
    else:
        value = sum(values.values()) / n if n else None
    cell = Cell(stats={"value": value, "mean": value, "n": n}, records=list(dict.fromkeys(names)),
                mixed=mixed, per_values=values)
    cell.keep = {name: None for name in keep}
    return cell


def published_setting(spec: dict) -> dict[str, Any]:
    """``published.setting``: the row fields (e.g. ``protocol``) the published numbers were produced under."""
    return dict((spec.get("published") or {}).get("setting") or {})


def same_setting(spec: dict, fields: dict[str, Any]) -> bool:
    """Whether a row or column group with these fields ran the published numbers' setting (absent: the paper's)."""
    return all(str(fields.get(k) if not is_missing(fields.get(k)) else PAPER_SETTING.get(k)) == str(v)
               for k, v in published_setting(spec).items())


def label_fields(spec: dict, key: tuple, sample: dict | None) -> dict[str, Any]:
    """Fields for row / group labels: a record's, or (published-only rows) the key with paper defaults."""
    if sample is not None:
        return sample
    fields = dict(zip(spec["rows"]["by"], key, strict=True))
    fields.update({k: fields.get(k) or v for k, v in {**PAPER_SETTING, **published_setting(spec)}.items()})
    model, tag = fields.get("model"), fields.get("tag")
    fields["row"] = model if not isinstance(tag, str) else f"{model} [{tag}]"
    fields["setting"] = ""
    return fields
