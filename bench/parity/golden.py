"""Golden files of a reference run: write, read, and compare the suite's outputs with them."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.io_utils import atomic_write_text

GOLDEN_ROOT = Path(__file__).resolve().parents[2] / "tests" / "golden" / "parity"
# committed golden files are JSON (diffable); above this size they are gzipped
GZIP_ABOVE_BYTES = 512 * 1024
# the tolerance the parity issues fix for losses and logits (relative)
REL_TOL = 1e-5


def golden_path(study: str, name: str) -> Path:
    """``tests/golden/parity/<study>/<name>.json`` or its ``.json.gz`` twin, whichever exists."""
    base = GOLDEN_ROOT / study / f"{name}.json"
    gz = base.with_suffix(".json.gz")
    return gz if gz.exists() and not base.exists() else base


def write_golden(study: str, name: str, payload: Mapping[str, Any]) -> Path:
    """Write one golden file atomically (sorted keys, gzipped when large); returns its path."""
    text = json.dumps(payload, sort_keys=True, indent=None, separators=(",", ":")) + "\n"
    base = GOLDEN_ROOT / study / f"{name}.json"
    base.parent.mkdir(parents=True, exist_ok=True)
    if len(text.encode()) > GZIP_ABOVE_BYTES:
        target = base.with_suffix(".json.gz")
        tmp = target.with_suffix(".gz.tmp")
        with gzip.GzipFile(tmp, "wb", mtime=0) as handle:
            handle.write(text.encode())
        tmp.replace(target)
        base.unlink(missing_ok=True)
        return target
    atomic_write_text(base, text)
    base.with_suffix(".json.gz").unlink(missing_ok=True)
    return base


def load_golden(study: str, name: str) -> dict[str, Any]:
    """Read one golden file; a missing one names the command that regenerates it."""
    path = golden_path(study, name)
    if not path.is_file():
        raise DataError(
            "golden file not found",
            file=path,
            fix=f"regenerate it with `python -m bench.parity {study} --ref /path/to/checkout` (docs/parity.md)",
        )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


@dataclass(frozen=True)
class IdsComparison:
    """How many of n id sequences are identical, and the first that is not."""

    n: int
    identical: int
    first_difference: str | None

    @property
    def ok(self) -> bool:
        return self.n > 0 and self.identical == self.n


def compare_ids(ours: Mapping[str, Sequence[Any]], theirs: Mapping[str, Sequence[Any]]) -> IdsComparison:
    """Compare keyed sequences exactly (keys missing on either side count as different)."""
    keys = sorted(set(ours) | set(theirs), key=str)
    identical, first = 0, None
    for key in keys:
        a, b = ours.get(key), theirs.get(key)
        if a is not None and b is not None and list(a) == list(b):
            identical += 1
        elif first is None:
            first = f"{key}: suite {a!r} vs reference {b!r}"
    return IdsComparison(n=len(keys), identical=identical, first_difference=first)


def max_rel_diff(ours: Sequence[float] | float, theirs: Sequence[float] | float, floor: float = 1e-8) -> float:
    """The largest |a - b| / max(|b|, floor) over two equally long flat sequences of floats."""
    a = [ours] if isinstance(ours, int | float) else list(_flatten(ours))
    b = [theirs] if isinstance(theirs, int | float) else list(_flatten(theirs))
    if len(a) != len(b):
        raise ValueError(f"lengths differ: suite {len(a)} vs reference {len(b)}")
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            return math.inf
        worst = max(worst, abs(x - y) / max(abs(y), floor))
    return worst


def _flatten(values: Any):
    for value in values:
        if isinstance(value, list | tuple):
            yield from _flatten(value)
        else:
            yield float(value)
