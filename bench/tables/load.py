"""Read run records (schema 1 and 2) with ``json`` and normalise them to schema-2 fields.

A record that cannot be read (bad JSON, a missing key) is reported once as a :class:`Problem`
(path, what is wrong, the fix) and skipped; every other record is still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED = ("name", "spec", "metrics")
SPEC_REQUIRED = ("task", "model", "method", "template")
_RANK = re.compile(r"^(?P<base>.+)-r(?P<rank>\d+)$")
FIX = "delete the file (or move it out of runs/) and rerun its spec with force=true"


@dataclass(frozen=True)
class Problem:
    """A record that was skipped, and why."""

    path: Path
    what: str
    fix: str = FIX

    def __str__(self) -> str:
        return f"{self.path}: {self.what}; skipped\n  fix: {self.fix}"


def split_rank(template: str) -> tuple[str, int]:
    """Schema 1 name: ``pararel-r3`` -> (``pararel``, 3); no suffix is rank 0."""
    match = _RANK.match(str(template))
    return (match["base"], int(match["rank"])) if match else (str(template), 0)


def normalise(record: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> schema 2 fields: template base + rank, config_hash None, protocol block."""
    record = dict(record)
    spec = dict(record["spec"])
    version = int(record.get("schema_version") or 1)
    if version < 2 or "rank" not in spec:
        base, rank = split_rank(spec["template"])
        spec["template"], spec["rank"] = base, rank
    if spec.get("rank") is None:
        spec["rank"] = 0
    spec.setdefault("config_hash", None)
    spec.setdefault("preset", None)
    for key in ("variant", "seed", "tag"):
        spec.setdefault(key, None)
    record["spec"] = spec
    protocol = dict(record.get("protocol") or {})
    protocol.setdefault("selection_split", record.get("selection_split"))
    protocol.setdefault("report_split", record.get("report_split"))
    protocol.setdefault("selection_rule", None)
    protocol.setdefault("seeds", [spec.get("seed")])
    record["protocol"] = protocol
    record["schema_version"] = version
    return record


def check(record: Any) -> str | None:
    """What is wrong with a parsed record, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        return f"lacks the key(s) {', '.join(missing)}"
    if not isinstance(record["spec"], dict) or not isinstance(record["metrics"], dict):
        return "'spec' and 'metrics' must be objects"
    missing = [key for key in SPEC_REQUIRED if key not in record["spec"]]
    if missing:
        return f"spec lacks {', '.join(missing)}"
    for split, block in record["metrics"].items():
        if not isinstance(block, dict) or not isinstance(block.get("overall", {}), dict):
            return f"metrics[{split!r}] is not an object with an 'overall' object"
    return None


def read_record(path: Path) -> tuple[dict | None, Problem | None]:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        return None, Problem(Path(path), f"not valid JSON (line {err.lineno}: {err.msg})")
    except (OSError, UnicodeDecodeError) as err:
        return None, Problem(Path(path), f"unreadable ({err})")
    what = check(record)
    if what:
        return None, Problem(Path(path), what)
    if record.get("status", "finished") != "finished":
        return None, None
    return normalise(record), None


def wanted(value: Any, allowed: Iterable[str] | None) -> bool:
    if allowed is None:
        return True
    allowed = set(allowed)
    return (value if value is not None else "none") in allowed


def load_records(runs_dir: Path, models: Iterable[str] | None = None,
                 tags: Iterable[str] | None = None) -> tuple[list[tuple[Path, dict]], list[Problem]]:
    """Finished records under runs_dir (recursive, sorted by path), filtered by model and tag.

    ``tags`` uses ``none`` for records without a tag. Backups (``*.json.bak``) are not read.
    """
    records, problems = [], []
    for path in sorted(Path(runs_dir).rglob("*.json")):
        record, problem = read_record(path)
        if problem is not None:
            problems.append(problem)
        if record is None:
            continue
        spec = record["spec"]
        if wanted(spec.get("model"), models) and wanted(spec.get("tag"), tags):
            records.append((path, record))
    return records, problems
