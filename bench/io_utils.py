"""Small, careful file helpers: JSONL with line-numbered errors, atomic writes, checksums."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.errors import DataError


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def iter_numbered_jsonl(
    path: str | Path,
    required: Sequence[str] = (),
    fix: str | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, dict) per non-empty line; raise DataError naming file, line and field on bad input."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=path, fix=fix)
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"not valid JSON ({err.msg} at column {err.colno})", file=path, line=number, fix=fix) from None
            if not isinstance(row, dict):
                raise DataError(f"expected a JSON object, got {type(row).__name__}", file=path, line=number, fix=fix)
            for field in required:
                if field not in row or row[field] is None:
                    raise DataError("required field is missing", file=path, line=number, field=field, fix=fix)
            yield number, row


def iter_jsonl(
    path: str | Path,
    required: Sequence[str] = (),
    fix: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line; raise DataError naming file, line and field on bad input."""
    for _, row in iter_numbered_jsonl(path, required, fix):
        yield row


def read_jsonl(path: str | Path, required: Sequence[str] = (), fix: str | None = None) -> list[dict[str, Any]]:
    return list(iter_jsonl(path, required=required, fix=fix))


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(path: Path, payload: bytes, exclusive: bool = False) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file.
    ``exclusive``: hard-link instead of rename, so an existing file is never replaced (FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; records are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)  # atomic and fails when another writer got there first
            Path(tmp).unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, exclusive: bool = False) -> None:
    atomic_write_bytes(Path(path), text.encode("utf-8"), exclusive=exclusive)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2, exclusive: bool = False) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False) + "\n",
                      exclusive=exclusive)


def atomic_write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows as JSONL atomically; return the number of rows written."""
    lines = [json.dumps(dict(row), ensure_ascii=False) for row in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
