"""Run records: one JSON file per run, named from its spec, written atomically, never clobbered.

Schema (``schema_version`` 1; documented in results/README.md):
``name``, ``status`` ("finished"), ``spec`` (task, variant, model, method, template, seed, tag),
``metrics`` (per split: ``overall``, ``groups``, ``subsets``), ``selection_split``,
``report_split``, ``params`` (trainable, total), ``config`` (resolved Hydra config),
``provenance`` (git, packages, data checksums, model, device, dtype, times), ``extra``.
A finished record is the only thing in ``runs/``; a crashed run writes a separate file in
``failed/`` (with its traceback) and leaves ``runs/`` untouched.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.io_utils import atomic_write_json

SCHEMA_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class RunSpec:
    """What identifies a run; its file name is derived from these fields only."""

    task: str
    model: str
    method: str
    template: str
    seed: int
    variant: str | None = None
    tag: str | None = None

    @property
    def name(self) -> str:
        task = f"{self.task}-{self.variant}" if self.variant else self.task
        parts = [task, self.model, self.method, self.template, f"seed{self.seed}"]
        if self.tag:
            parts.append(self.tag)
        return "__".join(_SAFE.sub("-", str(p)) for p in parts)

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "variant": self.variant, "model": self.model, "method": self.method,
                "template": self.template, "seed": self.seed, "tag": self.tag}


def record_path(runs_dir: Path, spec: RunSpec) -> Path:
    return Path(runs_dir) / spec.task / f"{spec.name}.json"


def load_record(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"run record is not valid JSON ({err.msg})", file=path, line=err.lineno,
                        fix="delete the file and rerun its spec with force=true") from None
    for key in ("name", "status", "spec", "metrics"):
        if key not in record:
            raise DataError("run record lacks a required key", file=path, field=key,
                            fix="delete the file and rerun its spec with force=true")
    return record


def is_finished(path: Path) -> bool:
    if not Path(path).is_file():
        return False
    try:
        return load_record(path).get("status") == "finished"
    except DataError:
        return False


def write_record(path: Path, spec: RunSpec, payload: Mapping[str, Any], force: bool = False) -> Path:
    """Write a finished record atomically. An existing finished record is kept unless ``force``;
    with ``force`` the old one is moved aside to ``<name>.<timestamp>.json.bak`` first."""
    path = Path(path)
    if path.exists() and is_finished(path):
        if not force:
            raise FileExistsError(f"{path} already holds a finished record; pass force=true to rerun")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path.rename(path.with_name(f"{path.stem}.{stamp}.json.bak"))
    record = {"schema_version": SCHEMA_VERSION, "name": spec.name, "status": "finished",
              "spec": spec.as_dict(), **payload}
    atomic_write_json(path, record)
    return path


def write_failure(failed_dir: Path, spec: RunSpec, error: BaseException, config: Mapping | None) -> Path:
    """Keep a crashed run apart, with its traceback, without touching runs/."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = Path(failed_dir) / f"{spec.name}.{stamp}.json"
    atomic_write_json(path, {"schema_version": SCHEMA_VERSION, "name": spec.name, "status": "failed",
                             "spec": spec.as_dict(), "error": repr(error),
                             "traceback": traceback.format_exception(error), "config": config})
    return path


def iter_records(runs_dir: Path):
    """Finished records under runs_dir (recursively), skipping moved-aside backups."""
    for path in sorted(Path(runs_dir).rglob("*.json")):
        record = load_record(path)
        if record.get("status") == "finished":
            yield path, record
