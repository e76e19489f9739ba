"""Run records: one JSON file per run, named from its spec, written atomically, never clobbered.

Schema (``schema_version`` 2; documented in results/README.md):
``name``, ``status`` ("finished"), ``spec`` (task, variant, model, method, template, rank, seed,
tag, preset, config_hash), ``protocol`` (selection split and rule, report split, seeds),
``metrics`` (per split: ``overall`` named metrics, ``groups``, ``subsets``), ``selection_split``,
``report_split``, ``params`` (trainable, total), ``config`` (resolved Hydra config),
``provenance`` (git, packages, data checksums, model, device, dtype, times), ``extra``.
Schema 1 records (rank folded into the template name, no config hash) load as schema 2.
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

SCHEMA_VERSION = 2
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_RANK = re.compile(r"^(?P<base>.+)-r(?P<rank>\d+)$")


@dataclass(frozen=True)
class RunSpec:
    """What identifies a run: readable fields plus ``config_hash``, the hash of every resolved config
    value that changes the result (``bench.identity``), so a hyperparameter grid gives one record per point."""

    task: str
    model: str
    method: str
    template: str
    seed: int
    variant: str | None = None
    tag: str | None = None
    rank: int | None = None
    config_hash: str | None = None
    preset: str | None = None

    @property
    def name(self) -> str:
        task = f"{self.task}-{self.variant}" if self.variant else self.task
        template = self.template if self.rank is None else f"{self.template}-r{self.rank}"
        parts = [task, self.model, self.method, template, f"seed{self.seed}"]
        if self.tag:
            parts.append(self.tag)
        if self.config_hash:
            parts.append(self.config_hash)
        return "__".join(_SAFE.sub("-", str(p)) for p in parts)

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "variant": self.variant, "model": self.model, "method": self.method,
                "template": self.template, "rank": self.rank, "seed": self.seed, "tag": self.tag,
                "preset": self.preset, "config_hash": self.config_hash}


def upgrade(record: dict) -> dict:
    """A schema 1 record in schema 2 form (rank out of the template name, protocol block); others as they are."""
    if int(record.get("schema_version", 1)) >= 2:
        return record
    spec = dict(record["spec"])
    match = _RANK.match(str(spec.get("template", "")))
    spec["template"], spec["rank"] = (match["base"], int(match["rank"])) if match else (spec.get("template"), None)
    spec.setdefault("preset", None)
    spec.setdefault("config_hash", None)
    protocol = {"selection_split": record.get("selection_split"), "selection_rule": None,
                "report_split": record.get("report_split"), "seeds": [spec.get("seed")]}
    return {**record, "schema_version": 2, "upgraded_from": 1, "spec": spec,
            "protocol": record.get("protocol") or protocol}


def record_path(runs_dir: Path, spec: RunSpec) -> Path:
    return Path(runs_dir) / spec.task / f"{spec.name}.json"


def load_record(path: Path) -> dict:
    """A record in schema 2 form; a clear DataError (file, line or key, fix) when it is unreadable."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"run record is not valid JSON ({err.msg})", file=path, line=err.lineno,
                        fix="delete the file and rerun its spec with force=true") from None
    if not isinstance(record, dict):
        raise DataError("run record is not a JSON object", file=path, line=1,
                        fix="delete the file and rerun its spec with force=true")
    for key in ("name", "status", "spec", "metrics"):
        if key not in record:
            raise DataError("run record lacks a required key", file=path, field=key,
                            fix="delete the file and rerun its spec with force=true")
    return upgrade(record)


def is_finished(path: Path) -> bool:
    if not Path(path).is_file():
        return False
    try:
        return load_record(path).get("status") == "finished"
    except DataError:
        return False


def write_record(path: Path, spec: RunSpec, payload: Mapping[str, Any], force: bool = False) -> Path:
    """Write a finished record atomically. An existing finished record is kept unless ``force``
    (FileExistsError, also when a parallel worker wrote it first); with ``force`` the old one is moved
    aside to ``<name>.<timestamp>.json.bak`` first. An unreadable file in the way is moved aside too."""
    path = Path(path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    if path.exists():
        if is_finished(path) and not force:
            raise FileExistsError(f"{path} already holds a finished record; pass force=true to rerun")
        path.rename(path.with_name(f"{path.stem}.{stamp}.json.bak"))
    record = {"schema_version": SCHEMA_VERSION, "name": spec.name, "status": "finished",
              "spec": spec.as_dict(), **payload}
    try:
        atomic_write_json(path, record, exclusive=True)
    except FileExistsError:
        raise FileExistsError(f"{path} was written by another worker while this run went on; kept it") from None
    return path


def write_failure(failed_dir: Path, spec: RunSpec, error: BaseException, config: Mapping | None) -> Path:
    """Keep a crashed run apart, with its traceback, without touching runs/."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = Path(failed_dir) / f"{spec.name}.{stamp}.json"
    atomic_write_json(path, {"schema_version": SCHEMA_VERSION, "name": spec.name, "status": "failed",
                             "spec": spec.as_dict(), "error": repr(error), "error_type": type(error).__name__,
                             "message": str(error),
                             "traceback": traceback.format_exception(error), "config": config})
    return path


def iter_records(runs_dir: Path, errors: list[DataError] | None = None):
    """Finished records under runs_dir (recursively), skipping moved-aside backups. With ``errors``,
    an unreadable record is appended there and skipped instead of raised."""
    for path in sorted(Path(runs_dir).rglob("*.json")):
        try:
            record = load_record(path)
        except DataError as err:
            if errors is None:
                raise
            errors.append(err)
            continue
        if record.get("status") == "finished":
            yield path, record


def latest_failure(failed_dir: Path, name: str) -> Path | None:
    """The newest failure file of a run name in failed/, or None."""
    found = sorted(Path(failed_dir).glob(f"{name}.*.json"))
    return found[-1] if found else None
