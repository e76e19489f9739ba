"""Table specs: YAML under ``conf/tables/`` loaded into checked dicts (errors name file, key and fix).

A spec says which records (``select``), which number (``value``: metric, split, scale), the rows,
the columns (display labels, the record fields that fill each), reductions over seeds and prompt
ranks, derived columns, the published numbers beside ours and the protocol notes. Shared rules
(column keys, protocol notes) live in ``conf/tables/rules/<name>.yaml`` and are named by a spec.
docs/tables.md describes every key with a worked example.
"""

from __future__ import annotations

import copy
import itertools
import string
from pathlib import Path
from typing import Any

import yaml

from bench.errors import DataError
from bench.paths import REPO_ROOT
from bench.tables.latex_fit import FITS

TABLES_DIR = REPO_ROOT / "conf" / "tables"
FIGURES_DIR = REPO_ROOT / "conf" / "figures"
RULES_DIR = TABLES_DIR / "rules"
STUDY_DIR = REPO_ROOT / "conf" / "study"
STATS = ("mean", "std", "pstd", "min", "max", "n", "median", "first", "range", "value")
TOP_KEYS = {"name", "title", "source", "select", "split", "value", "keep", "column_key", "rows", "column_groups",
            "columns", "derived", "published", "grid", "protocol_notes", "notes", "for_each", "missing_notes",
            "show_empty_columns", "label", "wide", "for_each_values", "file", "unavailable", "best", "fit", "study"}
ROW_KEYS = {"by", "labels", "from", "extra", "sort"}
COLUMN_KEYS = {"metric", "key", "keys", "label", "select", "show", "prefer", "lowest", "per", "stat", "then", "join",
               "within", "missing_note", "show_empty"}
PUBLISHED_KEYS = {"table", "variant", "match", "show", "normalise", "delta", "label_field", "all_models", "setting"}


def study_names() -> list[str]:
    return sorted(p.stem for p in STUDY_DIR.glob("*.yaml"))


def _fail(path: Path, key: str, message: str, fix: str) -> DataError:
    return DataError(message, file=path, field=key, fix=fix)


def _fields(path: Path, key: str, template: Any) -> list[str]:
    """The field names of a format string; a malformed one (``{model``) names the spec key."""
    if not isinstance(template, str):
        raise _fail(path, key, f"{template!r} is not a format string", 'write a string such as "{model} [{tag}]"')
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise _fail(path, key, f"malformed format {template!r} ({err})",
                    "close every {field} brace; write {{ and }} for literal braces") from None


def _check_keys(path: Path, where: str, block: Any, allowed: set[str]) -> None:
    if not isinstance(block, dict):
        raise _fail(path, where, f"{where} must be a mapping", "see docs/tables.md for the spec layout")
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise _fail(path, f"{where}.{unknown[0]}" if where else unknown[0], f"unknown key {unknown[0]!r}",
                    f"use one of {', '.join(sorted(allowed))} (docs/tables.md)")


def load_rules(name: str, path: Path, key: str, rules_dir: Path = RULES_DIR) -> Any:
    """A shared rule file ``conf/tables/rules/<name>.yaml`` (or the inline value if not a string)."""
    if not isinstance(name, str):
        return name
    file = rules_dir / f"{name}.yaml"
    if not file.is_file():
        raise _fail(path, key, f"no rule file {file}", f"create {file} or inline the rules under {key!r}")
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise _fail(file, key, f"not valid YAML ({err})", "fix the YAML syntax") from None


def _substitute(value: Any, values: dict[str, str]) -> Any:
    """Fill ``{field}`` placeholders of a for_each expansion (strings only; other braces are kept)."""
    if isinstance(value, str):
        for key, sub in values.items():
            value = value.replace("{" + key + "}", str(sub))
        return value
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    return value


def check_spec(spec: dict, path: Path, rules_dir: Path = RULES_DIR) -> dict:
    """Validate one spec and resolve its rule references; returns a new dict with defaults filled."""
    _check_keys(path, "", spec, TOP_KEYS)
    spec = copy.deepcopy(spec)
    for key in ("name", "title", "columns"):
        if key not in spec:
            raise _fail(path, key, f"the spec lacks {key!r}", f"add {key}: ... (docs/tables.md)")
    if spec.setdefault("source", "records") not in ("records", "groups"):
        raise _fail(path, "source", f"source must be records or groups, not {spec['source']!r}",
                    "source: records (overall metrics) or groups (per relation / question)")
    value = spec.get("value")
    if not isinstance(value, dict) or "metric" not in value:
        raise _fail(path, "value.metric", "the spec lacks value.metric",
                    "value: {metric: overall.<key>, scale: 100, digits: 1}")
    value.setdefault("scale", 1)
    value.setdefault("digits", 1)
    spec.setdefault("split", "report")
    spec.setdefault("select", {})
    spec.setdefault("keep", {})
    rows = spec.setdefault("rows", {"by": ["model", "tag"]})
    _check_keys(path, "rows", rows, ROW_KEYS)
    rows.setdefault("by", ["model", "tag"])
    rows.setdefault("labels", {"Model": "{row}"})
    if not isinstance(rows["by"], list) or not isinstance(rows["labels"], dict):
        raise _fail(path, "rows", "rows.by must be a list and rows.labels a mapping",
                    'rows: {by: [model, tag], labels: {Model: "{row}"}}')
    for header, template in rows["labels"].items():
        _fields(path, f"rows.labels.{header}", template)
    if not isinstance(spec["columns"], list) or not spec["columns"]:
        raise _fail(path, "columns", "columns must be a non-empty list", "columns: [{key: ..., label: ...}]")
    for i, column in enumerate(spec["columns"]):
        _check_keys(path, f"columns[{i}]", column, COLUMN_KEYS)
        if "key" not in column:
            raise _fail(path, f"columns[{i}].key", "a column lacks its key", "add key: <column key>")
        if "column_key" not in spec and "select" not in column:
            raise _fail(path, f"columns[{i}]", "without column_key a column needs a select",
                        "add column_key: <rules> or select: {field: value} to the column")
        column.setdefault("label", column["key"])
        column.setdefault("show", "{mean}")
        column.setdefault("missing_note", True)
        if column.get("stat", "value") not in STATS:
            raise _fail(path, f"columns[{i}].stat", f"unknown stat {column['stat']!r}", f"use one of {STATS}")
        if column.get("then", "mean") not in ("mean", "count"):
            raise _fail(path, f"columns[{i}].then", "then must be mean or count", "then: mean")
        unknown = [f for f in _fields(path, f"columns[{i}].show", column["show"]) if f not in (*STATS, "ids")]
        if unknown:
            raise _fail(path, f"columns[{i}].show", f"unknown statistic {{{unknown[0]}}} in show",
                        f"use {{name}} with a name among {', '.join((*STATS, 'ids'))}, e.g. show: \"{{mean}} ({{std}})\"")
    keys = [c["key"] for c in spec["columns"]]
    for i, derived in enumerate(spec.setdefault("derived", [])):
        if not set(derived.get("minus", [])) <= set(keys) or len(derived.get("minus", [])) != 2:
            raise _fail(path, f"derived[{i}].minus", "minus needs two column keys of this spec",
                        f"minus: [a, b] with a, b among {keys}")
    if "published" in spec:
        _check_keys(path, "published", spec["published"], PUBLISHED_KEYS)
        spec["published"].setdefault("show", "beside")
    if "column_key" in spec:
        spec["column_key"] = load_rules(spec["column_key"], path, "column_key", rules_dir)
    if "protocol_notes" in spec:
        spec["protocol_notes"] = load_rules(spec["protocol_notes"], path, "protocol_notes", rules_dir)
    if spec.get("grid") is None:
        spec.pop("grid", None)
    elif spec["grid"].get("select") not in ("max", "min"):
        raise _fail(path, "grid.select", "grid.select must be max or min",
                    "grid: {select: max, metric: overall.<key>, split: selection}")
    elif not isinstance(spec["grid"].get("per", []), list):
        raise _fail(path, "grid.per", "grid.per must be a list of record fields", "per: [seed]")
    elif spec["grid"].get("tie", "hash") not in ("hash", "record"):
        raise _fail(path, "grid.tie", "grid.tie must be hash (first config hash) or record (extra.tie_order)",
                    "tie: record")
    if "best" in spec:
        _check_keys(path, "best", spec["best"], {"by", "split", "metric"})
        if set(spec["best"]) != {"by", "split", "metric"}:
            raise _fail(path, "best", "best needs by, split and metric",
                        "best: {by: rank, split: dev32, metric: overall.score}")
    studies = spec.get("study", [])
    spec["study"] = studies = [studies] if isinstance(studies, str) else list(studies)
    unknown = [s for s in studies if not (STUDY_DIR / f"{s}.yaml").is_file()]
    if unknown:
        raise _fail(path, "study", f"no study {unknown[0]!r} under {STUDY_DIR}",
                    f"list studies whose reproduce target rebuilds this table: {', '.join(study_names())}")
    if spec.setdefault("fit", "blocks") not in FITS:
        raise _fail(path, "fit", f"unknown fit {spec['fit']!r}",
                    "fit: blocks (column blocks that fit the line), resize (scaled to it) or landscape")
    spec.setdefault("notes", [])
    spec.setdefault("missing_notes", True)
    spec.setdefault("show_empty_columns", True)
    spec["file"] = str(path)
    return spec


def expand(spec: dict) -> list[dict]:
    """One spec per ``for_each`` combination (placeholders filled), or the spec itself."""
    for_each = spec.pop("for_each", None)
    if not for_each:
        return [spec]
    names = list(for_each)
    out = []
    for combo in itertools.product(*(for_each[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        out.append({**_substitute(spec, values), "for_each_values": values})
    return out


def load_spec(path: Path, rules_dir: Path = RULES_DIR) -> list[dict]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DataError(f"not valid YAML ({getattr(err, 'problem', err)})", file=path,
                        line=mark.line + 1 if mark else None, fix="fix the YAML syntax") from None
    return [check_spec(s, path, rules_dir) for s in expand(raw or {})]


def load_specs(directory: Path = TABLES_DIR, only: list[str] | None = None) -> list[dict]:
    """Every spec under ``directory/*.yaml`` (``only``: file stems or table names to keep)."""
    specs = []
    for path in sorted(Path(directory).glob("*.yaml")):
        for spec in load_spec(path, Path(directory) / "rules"):
            if only is None or path.stem in only or spec["name"] in only:
                specs.append(spec)
    return specs
