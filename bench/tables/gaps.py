"""Cells that lack part of their data say so: a missing seed or grid point, or a record that could not be read.

A cell's *expected* seeds are those any cell of the same column has from the same preset (a preset
fixes the grid), and its expected grid points per seed the most any such cell has for that seed; a cell
with fewer gets a ``§`` and a note.
A spec with ``missing_notes: false`` (the notebook's run lists) skips this comparison.
An unreadable record (truncated JSON) is placed by its file name (``bench.records.RunSpec.name``) into
the cell it would have filled; one that fits no cell is named in a table note.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from bench.tables.cells import Cell, clean, column_of, matches
from bench.tables.load import Problem

_NAME = re.compile(r"^(?P<task>[^_]+?)(?:-(?P<variant>[^-_]+))?__(?P<model>.+?)__(?P<method>.+?)__(?P<template>.+?)"
                   r"__seed(?P<seed>-?\d+|None)(?:__(?P<tag>.+?))?(?:__(?P<config_hash>[0-9a-f]{8}))?$")


def coverage(rows: pd.DataFrame) -> dict[tuple[Any, Any], set[str]]:
    """(preset, seed) -> the grid points (configuration ids apart from seed and rank) a cell's records cover."""
    by = "grid_hash" if "grid_hash" in rows.columns else "config_hash"
    presets = rows["preset"] if "preset" in rows.columns else [None] * len(rows)
    out: dict[tuple[Any, Any], set[str]] = {}
    for preset, seed, point in zip(presets, rows["seed"], rows[by], strict=True):
        out.setdefault((clean(preset), clean(seed)), set()).add(str(clean(point)))
    return out


def parse_name(stem: str) -> dict[str, Any] | None:
    """A record file's stem -> its spec fields (template rank split off), or None when it is not a run name."""
    match = _NAME.match(stem)
    if not match:
        return None
    fields = match.groupdict()
    if fields["config_hash"] is None and re.fullmatch(r"[0-9a-f]{8}", fields["tag"] or ""):
        fields["tag"], fields["config_hash"] = None, fields["tag"]
    template, _, rank = fields["template"].rpartition("-r")
    if template and rank.isdigit():
        fields["template"], fields["rank"] = template, int(rank)
    else:
        fields["rank"] = 0
    fields["seed"] = None if fields["seed"] == "None" else int(fields["seed"])
    return fields


def _fits(fields: dict[str, Any], conditions: dict | None) -> bool:
    """Select conditions on the fields a name carries (others cannot be checked and count as met)."""
    return all(matches(fields[k], v) for k, v in (conditions or {}).items() if k in fields)


def _place(spec: dict, fields: dict[str, Any], cells: dict) -> list[tuple]:
    """The cells an unreadable record would have filled (row keys matched on the fields its name carries)."""
    if not _fits(fields, spec.get("select")):
        return []
    if "column_key" in spec:
        fields = {**fields, "column": column_of(fields, spec["column_key"])}
    by = spec["rows"]["by"]
    out = []
    for column in spec["columns"]:
        if "select" in column:
            hit = _fits(fields, column["select"])
        else:
            hit = fields.get("column") in column.get("keys", [column["key"]])
        if not hit:
            continue
        for key in [k for k in cells if k[0] == column["key"]]:
            row = dict(zip(by, key[1], strict=False))
            if all(str(row[f]) == str(fields[f]) for f in by if f in fields and f in row and row[f] is not None):
                out.append(key)
    return out


def mark_gaps(spec: dict, cells: dict[tuple, Cell], problems: list[Problem]) -> list[str]:
    """Fill each cell's ``gaps`` (missing seeds, grid points, unreadable records); returns table notes for
    unreadable records that may belong to the table but fit no cell."""
    seeds: dict[tuple, set] = {}  # (column, preset) -> seeds any cell has
    points: dict[tuple, int] = {}  # (column, preset, seed) -> the most grid points any cell has
    compare = spec.get("missing_notes", True)  # run lists (views) compare nothing across rows
    for (column, _, _), cell in cells.items() if compare else []:
        for (preset, seed), pts in cell.coverage.items():
            seeds.setdefault((column, preset), set()).add(seed)
            points[(column, preset, seed)] = max(points.get((column, preset, seed), 0), len(pts))
    for (column, _, _), cell in cells.items() if compare else []:
        for preset in sorted({p for p, _ in cell.coverage}, key=str):
            have = {s for p, s in cell.coverage if p == preset}
            lacking = sorted(seeds[(column, preset)] - have, key=str)
            if lacking:
                cell.gaps.append(f"seed {', '.join(map(str, lacking))} missing ({len(have)} of "
                                 f"{len(seeds[(column, preset)])} seeds)")
        for (preset, seed), pts in sorted(cell.coverage.items(), key=lambda kv: str(kv[0])):
            if len(pts) < points[(column, preset, seed)]:
                cell.gaps.append(f"{len(pts)} of {points[(column, preset, seed)]} grid points for seed {seed}")
    loose = []
    for problem in problems:
        fields = parse_name(problem.path.stem)
        if fields is None:
            continue
        placed = _place(spec, fields, cells)
        for key in placed:
            cells[key].gaps.append(f"record {problem.path.name} unreadable ({problem.what})")
        if not placed and _fits(fields, spec.get("select")):
            loose.append(problem.path.name)
    if loose:
        return [f"§ unreadable records that may belong to this table (cells may lack them): {', '.join(loose)}"]
    return []
