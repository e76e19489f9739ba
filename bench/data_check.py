"""Run-time integrity of the prepared data: what a run reads is what ``data_prep`` wrote.

Before a job plans anything (so before a finished run is skipped), :func:`check_family` compares
every file of the task's data family (``task.data_family``; a superset of what the run reads) with
``data/<family>/MANIFEST.json``: size, then sha256. The digest is cached per file by size and
mtime (in memory and in ``<data_dir>/.verified.json``), so only a new or touched file is hashed
again. A file that differs is scanned row by row against the family's schema (required fields,
label values), so the error names ``file:line`` and the field when a row is damaged, and the whole
file (with both digests) otherwise. Prepared files the MANIFEST does not list (SuperGLUE's
``--full`` downloads) get the row check only. Every refusal names the command that restores the
file. A data folder without a MANIFEST (hand-made test data) is not verified, and the record says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.io_utils import atomic_write_json, iter_numbered_jsonl

log = logging.getLogger("bench.data_check")
CACHE_NAME = ".verified.json"
PREP_NAME = {"lama": "lama", "superglue": "superglue", "lm-bff": "lm_bff"}  # data_family -> data_prep step
_MEMO: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, this process

# SuperGLUE-format rows: fields every row of the task has (as data_prep/superglue/validate.py writes them)
SUPERGLUE_FIELDS = {"BoolQ": ("question", "passage"), "CB": ("premise", "hypothesis"),
                    "COPA": ("premise", "choice1", "choice2", "question"), "MultiRC": ("passage",),
                    "ReCoRD": ("passage", "qas"), "RTE": ("premise", "hypothesis"),
                    "WiC": ("word", "sentence1", "sentence2"), "WSC": ("text", "target")}
SUPERGLUE_LABELS = {"BoolQ": (True, False), "CB": ("entailment", "contradiction", "neutral"), "COPA": (0, 1),
                    "RTE": ("entailment", "not_entailment"), "WiC": (True, False), "WSC": (True, False)}


def restore_fix(family: str) -> str:
    step = PREP_NAME.get(family, family)
    return (f"restore the prepared data with `python -m data_prep {step} --force` (rewrites the family's files and "
            "its MANIFEST from the sources); to run on other data, prepare it with data_prep into its own folder "
            "and pass paths.data_dir=<folder>")


# row schemas -------------------------------------------------------------------------------------
RowCheck = Callable[[Mapping[str, Any]], tuple[str, str] | None]  # -> (field, problem) or None


def _superglue_rows(task: str, labeled: bool) -> RowCheck:
    def check(row: Mapping[str, Any]) -> tuple[str, str] | None:
        for name in SUPERGLUE_FIELDS[task]:
            if row.get(name) is None:
                return name, "required field is missing"
        if task in SUPERGLUE_LABELS and (labeled or "label" in row):
            if "label" not in row or row["label"] is None:
                return "label", "required field is missing (a labelled split: every row has its gold label)"
            if row["label"] not in SUPERGLUE_LABELS[task]:
                return "label", f"{row['label']!r} is not one of {SUPERGLUE_LABELS[task]}"
        return None

    return check


def _lmbff_rows(task: str) -> RowCheck:
    from bench.lmbff.data import FIELDS, LABELS

    def check(row: Mapping[str, Any]) -> tuple[str, str] | None:
        for name in (*FIELDS[task], "label"):
            if row.get(name) is None:
                return name, "required field is missing"
        if str(row["label"]) not in LABELS[task]:
            return "label", f"{row['label']!r} is not one of {LABELS[task]}"
        return None

    return check


def _fields(*names: str) -> RowCheck:
    def check(row: Mapping[str, Any]) -> tuple[str, str] | None:
        return next(((n, "required field is missing") for n in names if row.get(n) is None), None)

    return check


def row_check(rel: str) -> RowCheck | None:
    """The schema of a prepared file, from its path relative to the data folder (None: no row schema)."""
    if m := re.fullmatch(r"(fewglue|superglue)/(\w+)/(train|dev32|val|unlabeled)\.jsonl", rel):
        return _superglue_rows(m[2], labeled=m[3] != "unlabeled") if m[2] in SUPERGLUE_FIELDS else None
    if m := re.fullmatch(r"lm-bff/(SST-2|SNLI)/(?:16-\d+/)?(train|dev|test)\.jsonl", rel):
        return _lmbff_rows(m[1])
    if re.fullmatch(r"lama/facts/[\w-]+/P\d+/(train|dev|test)\.jsonl", rel):
        from bench.lama.data import FACT_FIELDS

        return _fields(*FACT_FIELDS)
    if rel == "lama/relations.jsonl":
        return _fields("relation", "template")
    return None


def scan_rows(path: Path, rel: str, fix: str) -> None:
    """Raise a DataError naming file, line and field at the first row that breaks the schema."""
    check = row_check(rel)
    if check is None:
        return
    for line, row in iter_numbered_jsonl(path, fix=fix):
        if (problem := check(row)) is not None:
            raise DataError(problem[1], file=path, line=line, field=problem[0], fix=fix)


# digests -------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class _DigestCache:
    """sha256 per file, trusted while the file's size and mtime are unchanged."""

    def __init__(self, data_dir: Path) -> None:
        self.file = data_dir / CACHE_NAME
        self.entries: dict[str, list] = {}
        self.dirty = False
        with contextlib.suppress(OSError, ValueError):
            self.entries = dict(json.loads(self.file.read_text(encoding="utf-8")))

    def digest(self, path: Path, rel: str) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key in _MEMO:
            return _MEMO[key]
        cached = self.entries.get(rel)
        if isinstance(cached, list) and len(cached) == 3 and cached[:2] == [st.st_size, st.st_mtime_ns]:
            _MEMO[key] = str(cached[2])
            return _MEMO[key]
        _MEMO[key] = _sha256(path)
        self.entries[rel] = [st.st_size, st.st_mtime_ns, _MEMO[key]]
        self.dirty = True
        return _MEMO[key]

    def save(self) -> None:
        if self.dirty:
            with contextlib.suppress(OSError):  # a read-only data folder: the in-process memo still holds
                atomic_write_json(self.file, self.entries, indent=None)


# the check ----------------------------------------------------------------------------------------
def check_family(data_dir: Path, family: str) -> dict[str, Any]:
    """Verify every file of ``family`` under ``data_dir`` against its MANIFEST; return what was checked."""
    data_dir = Path(data_dir)
    manifest_path = data_dir / family / "MANIFEST.json"
    if not manifest_path.is_file():
        log.warning("%s has no MANIFEST.json: its files are not verified (prepare it with data_prep)", data_dir / family)
        return {"verified": False, "reason": f"no {manifest_path}"}
    fix = restore_fix(family)
    try:
        outputs = json.loads(manifest_path.read_text(encoding="utf-8"))["outputs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"unreadable MANIFEST ({err})", file=manifest_path, fix=fix) from None
    cache = _DigestCache(data_dir)
    try:
        for rel, info in outputs.items():
            path = data_dir / rel
            if not path.is_file():
                raise DataError("listed in the family's MANIFEST.json but missing", file=path, fix=fix)
            digest = cache.digest(path, rel)
            if digest != info.get("sha256"):
                scan_rows(path, rel, fix)  # a damaged row is named by line and field
                raise DataError(f"changed since data_prep wrote it (sha256 {digest[:12]}..., MANIFEST "
                                f"{str(info.get('sha256'))[:12]}...; {path.stat().st_size} bytes, MANIFEST "
                                f"{info.get('bytes')}): a run would read other data than its record says",
                                file=path, fix=fix)
        unlisted = _unlisted(data_dir, family, outputs)
        for rel in unlisted:  # SuperGLUE --full downloads: no MANIFEST entry, rows still checked
            key = f"rows:{rel}"
            path = data_dir / rel
            st = path.stat()
            if cache.entries.get(key) != [st.st_size, st.st_mtime_ns, "ok"]:
                scan_rows(path, rel, fix)
                cache.entries[key], cache.dirty = [st.st_size, st.st_mtime_ns, "ok"], True
    finally:
        cache.save()
    return {"verified": True, "manifest": str(manifest_path), "files": len(outputs), "rows_only": unlisted}


def _unlisted(data_dir: Path, family: str, outputs: Mapping[str, Any]) -> list[str]:
    """Prepared-looking files (ones with a row schema) in the family's folders that the MANIFEST omits."""
    tops = sorted({family, *(rel.split("/", 1)[0] for rel in outputs)})
    found = (p.relative_to(data_dir).as_posix() for top in tops for p in (data_dir / top).rglob("*.jsonl"))
    return sorted(rel for rel in found if rel not in outputs and row_check(rel) is not None)
