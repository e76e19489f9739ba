"""Any config key as a table field: a dotted name a spec uses (``rows.by: [trainer.lr]``, ``{trainer.lr}`` in a
label, a ``select``) that is not a frame column is read from each record's resolved ``config``.

A dotted name that no selected record has stops the build with the spec file, the key and the fix, so a
typo never collapses a grid into one averaged cell.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pandas as pd

from bench.errors import DataError
from bench.identity import flat_identity

_MISSING = object()


def placeholders(template: Any) -> list[str]:
    """Field names of a ``str.format`` template (``"{model} lr={trainer.lr}"`` -> model, trainer.lr)."""
    if not isinstance(template, str):
        return []
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def used_fields(spec: dict) -> dict[str, str]:
    """Every record field the spec reads -> the spec key that reads it (for the error message)."""
    out: dict[str, str] = {}

    def add(names, where: str) -> None:
        for name in names or []:
            out.setdefault(str(name), where)

    rows, groups = spec.get("rows") or {}, spec.get("column_groups") or {}
    add(rows.get("by"), "rows.by")
    add(groups.get("by"), "column_groups.by")
    add(spec.get("select"), "select")
    for header, template in (rows.get("labels") or {}).items():
        add(placeholders(template), f"rows.labels.{header}")
    add(placeholders(groups.get("label")), "column_groups.label")
    add((rows.get("from") or {}).get("select"), "rows.from.select")
    for i, extra in enumerate(rows.get("extra") or []):
        add(extra.get("select"), f"rows.extra[{i}].select")
    columns = spec.get("columns") if isinstance(spec.get("columns"), list) else []  # figures: a key -> label map
    for i, column in enumerate(c for c in columns if isinstance(c, dict)):
        add(column.get("select"), f"columns[{i}].select")
        add(column.get("prefer"), f"columns[{i}].prefer")
    add((spec.get("grid") or {}).get("per"), "grid.per")
    return out


def config_value(config: Any, dotted: str) -> Any:
    """``trainer.lr`` (or ``config.trainer.lr``) in a resolved config; lists and mappings as JSON text."""
    node = config
    for part in dotted.removeprefix("config.").split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    if isinstance(node, dict | list):
        return json.dumps(node, sort_keys=True)
    return node


def add_config_fields(frame: pd.DataFrame, spec: dict, by_name: dict[str, dict]) -> pd.DataFrame:
    """``frame`` with a column for every dotted field the spec uses that the frame lacks, read from configs."""
    wanted = {f: where for f, where in used_fields(spec).items() if "." in f and f not in frame.columns}
    if not wanted or frame.empty:
        return frame
    frame = frame.copy()
    for name, where in wanted.items():
        values = [config_value((by_name.get(n) or {}).get("config"), name) for n in frame["name"]]
        if all(v is _MISSING for v in values):
            raise DataError(f"{name!r} is neither a frame column nor a config key of any record this spec selects",
                            file=spec.get("file"), field=where,
                            fix="use a record field (task, model, method, template, seed, tag, ...) or a dotted config "
                                "key the records have (e.g. trainer.lr; `python -m bench.study status` lists the "
                                "keys that tell runs apart)")
        frame[name] = [None if v is _MISSING else v for v in values]
    return frame


def describe_points(points: list[dict], by_name: dict[str, dict]) -> str | None:
    """The configurations of a ``‡`` cell: the config keys that tell them apart (seed and prompt rank aside) and
    each one's record config ids, the hashes that end record names and that ``bench.study status`` prints."""
    if not points:
        return None
    flats, ids = [], []
    for point in points:
        records = [by_name[n] for n in point.get("names", []) if n in by_name]
        config = next((r.get("config") for r in records if isinstance(r.get("config"), dict)), {})
        flat = flat_identity(config)
        for key in ("seed", "template.rank"):
            flat.pop(key, None)
        flats.append(flat)
        own = sorted({str(r["spec"]["config_hash"]) for r in records if r["spec"].get("config_hash")})
        ids.append(own or [str(point.get("config_hash"))])
    keys = sorted(k for k in set().union(*flats) if len({json.dumps(f.get(k), default=str) for f in flats}) > 1)
    parts = []
    for flat, own in zip(flats, ids, strict=True):
        what = ", ".join(f"{k}={flat.get(k)}" for k in keys)
        parts.append(f"{what} (config {', '.join(own)})" if what else f"config {', '.join(own)}")
    return "; ".join(parts)
