"""Shared machinery for the data-preparation steps: sources, downloads, outputs, counts, manifests.

A *source* is named by its path relative to the mirror root (e.g. ``lama/relations.jsonl``).  It is
read from the mirror folder when one is given, otherwise downloaded from its canonical public URL
into ``<out>/_downloads/`` and checked against the pinned sha256 in the family's ``SHA256SUMS``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.io_utils import atomic_write_bytes, atomic_write_json, iter_numbered_jsonl, sha256_file
from bench.paths import data_dir, mirror_dir

MIRROR_FIX = "pass --mirror DIR (a local copy of the shared data folder) or run with network access"


@dataclass(frozen=True)
class Upstream:
    """Where the files under one mirror prefix come from."""

    prefix: str  # mirror-relative prefix, e.g. "lama/common_vocabs/"
    repo: str | None  # GitHub owner/name; None = derived file, mirror only
    commit: str | None = None
    path: str | None = None  # upstream path that replaces ``prefix``
    modified: bool = False  # mirror file differs from upstream (checksum is the mirror's)
    note: str = ""

    def url(self, rel: str) -> str | None:
        if self.repo is None:
            return None
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}{rel[len(self.prefix):]}"


def read_sums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style file: ``<hex>  <relative path>`` per line."""
    sums: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                digest, rel = line.split(maxsplit=1)
                sums[rel.strip()] = digest
    return sums


def fetch(url: str, sha256: str | None, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (reused when already there and valid); verify its sha256."""
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as handle, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                digest.update(block)
                handle.write(block)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise DataError(
                f"checksum mismatch: got {digest.hexdigest()}, expected {sha256}", file=url, fix=MIRROR_FIX
            )
        os.replace(tmp, dest)
    except DataError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except OSError as err:  # URLError and HTTPError are OSErrors
        Path(tmp).unlink(missing_ok=True)
        raise DataError(f"download failed: {err}", file=url, fix=MIRROR_FIX) from None
    return dest


class Sources:
    """Resolve mirror-relative source paths to local files and remember what was read."""

    def __init__(
        self, upstreams: list[Upstream], sums: dict[str, str], mirror: Path | None, cache: Path
    ) -> None:
        self.upstreams, self.sums, self.mirror, self.cache = upstreams, sums, mirror, cache
        self.used: dict[str, dict[str, Any]] = {}

    @property
    def mode(self) -> str:
        return "mirror" if self.mirror is not None else "download"

    def upstream(self, rel: str) -> Upstream:
        matches = [u for u in self.upstreams if rel.startswith(u.prefix)]
        if not matches:
            raise DataError("no upstream registered for this source", file=rel)
        return max(matches, key=lambda u: len(u.prefix))

    def path(self, rel: str) -> Path:
        """Local path of a source; raise DataError (with the fix) when it cannot be had."""
        up = self.upstream(rel)
        if self.mirror is not None:
            local = self.mirror / rel
            if not local.is_file():
                raise DataError("source file not found in the mirror", file=local, fix=MIRROR_FIX)
        else:
            url = up.url(rel)
            if url is None:
                raise DataError(
                    "derived file with no public URL; it exists only in the shared mirror",
                    file=rel, fix=f"pass --mirror DIR where DIR/{rel} exists",
                )
            local = fetch(url, None if up.modified else self.sums.get(rel), self.cache / rel)
        if rel not in self.used:
            self.used[rel] = self.describe(rel, sha256_file(local))
        return local

    def describe(self, rel: str, digest: str) -> dict[str, Any]:
        up = self.upstream(rel)
        pinned = self.sums.get(rel)
        entry: dict[str, Any] = {"path": rel, "url": up.url(rel), "sha256": digest}
        if up.repo is None:
            entry["upstream"] = "derived (not a copy of any upstream file)"
        elif up.modified:
            entry["upstream"] = "modified copy: checksum is NOT that of the upstream file"
        else:
            entry["upstream"] = "byte copy of url"
        entry["pinned_sha256_match"] = None if pinned is None else pinned == digest
        if up.note:
            entry["note"] = up.note
        return entry

    def current_digest(self, rel: str) -> str | None:
        """sha256 of what would be read now, without downloading; None when unknown."""
        if self.mirror is not None:
            local = self.mirror / rel
            return sha256_file(local) if local.is_file() else None
        cached = self.cache / rel
        if cached.is_file():
            return sha256_file(cached)
        up = self.upstream(rel)
        return None if up.modified else self.sums.get(rel)


class Outputs:
    """Atomic writers that record rows, bytes and sha256 of every output (paths relative to ``out``)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: dict[str, dict[str, Any]] = {}

    def _write(self, rel: str, payload: bytes, rows: int) -> int:
        atomic_write_bytes(self.out / rel, payload)
        self.files[rel] = {"rows": rows, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        return rows

    def jsonl(self, rel: str, rows: Iterable[Mapping[str, Any]]) -> int:
        lines = [json.dumps(dict(row), ensure_ascii=False) + "\n" for row in rows]
        payload = "".join(lines).encode("utf-8")
        if rel.endswith(".gz"):
            payload = gzip.compress(payload, compresslevel=6, mtime=0)
        return self._write(rel, payload, len(lines))

    def lines(self, rel: str, items: Iterable[str]) -> int:
        items = list(items)
        return self._write(rel, "".join(f"{item}\n" for item in items).encode("utf-8"), len(items))


@dataclass
class Check:
    group: str
    expected: int | None
    got: int | None
    gap: str | None = None  # documented known gap: passes when nothing was produced

    @property
    def ok(self) -> bool:
        return self.got == self.expected or self.gap is not None and not self.got


@dataclass
class Report:
    """Expected-vs-got table for one family; prints as it goes."""

    family: str
    checks: list[Check] = field(default_factory=list)
    quiet: bool = False

    def check(self, group: str, expected: int | None, got: int | None, gap: str | None = None) -> None:
        item = Check(group, expected, got, gap)
        self.checks.append(item)
        if not self.quiet:
            status = "MISMATCH" if not item.ok else (f"KNOWN GAP: {gap}" if gap else "ok")
            exp = "-" if expected is None else f"{expected:,}"
            got_s = "-" if got is None else f"{got:,}"
            print(f"[{self.family}] {group:<44} expected {exp:>9}  got {got_s:>9}  {status}")

    def note(self, text: str) -> None:
        if not self.quiet:
            print(f"[{self.family}] {text}")

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {c.group: {"expected": c.expected, "got": c.got, **({"gap": c.gap} if c.gap else {})} for c in self.checks}


class CountMismatch(DataError):
    """Raised when a count differs from the expected one and the difference is not a known gap."""


def resolve_dirs(mirror: Path | None, out: Path | None, download: bool) -> tuple[Path | None, Path]:
    out = Path(out) if out is not None else data_dir()
    if download:
        return None, out
    mirror = Path(mirror) if mirror is not None else mirror_dir()
    if mirror is not None and not mirror.is_dir():
        raise DataError("mirror folder does not exist", file=mirror, fix=MIRROR_FIX)
    return mirror, out


def up_to_date(manifest_path: Path, version: str, sources: Sources, out: Path) -> bool:
    """True when the manifest matches this code version, every source checksum, and every output."""
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if manifest.get("version") != version or not manifest.get("sources"):
        return False
    for src in manifest["sources"]:
        if sources.current_digest(src["path"]) != src["sha256"]:
            return False
    for rel, info in manifest.get("outputs", {}).items():
        target = out / rel
        if not target.is_file() or target.stat().st_size != info["bytes"]:
            return False
    return True


def finish(
    family: str,
    version: str,
    manifest_path: Path,
    sources: Sources,
    outputs: Outputs,
    report: Report,
    known_gaps: list[dict[str, Any]],
    started: float,
) -> dict[str, Any]:
    """Fail loudly on count mismatches; otherwise write the MANIFEST and return the counts."""
    failures = report.failures()
    if failures:
        lines = ", ".join(f"{c.group}: expected {c.expected}, got {c.got}" for c in failures)
        raise CountMismatch(f"{len(failures)} count(s) differ from the expected ones: {lines}", file=manifest_path.parent,
                            fix="check the mirror against data_prep/*/SHA256SUMS or rerun with --force")
    manifest = {
        "family": family,
        "version": version,
        "mode": sources.mode,
        "mirror": None if sources.mirror is None else str(sources.mirror),
        "sources": [sources.used[k] for k in sorted(sources.used)],
        "outputs": {k: outputs.files[k] for k in sorted(outputs.files)},
        "counts": report.as_dict(),
        "known_gaps": known_gaps,
    }
    atomic_write_json(manifest_path, manifest)
    report.note(f"wrote {len(outputs.files)} files, MANIFEST at {manifest_path} ({time.time() - started:.1f} s)")
    return {"status": "built", **{c.group: c.got for c in report.checks}}


def skipped(family: str, manifest_path: Path, quiet: bool = False) -> dict[str, Any]:
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not quiet:
        print(f"[{family}] up to date ({manifest_path}); use --force to rebuild")
    return {"status": "up to date", **{k: v["got"] for k, v in manifest["counts"].items()}}


Builder = Callable[[Sources, Outputs, Report], list[dict[str, Any]]]


@dataclass(frozen=True)
class Family:
    """Static description of one preparation step."""

    name: str
    version: str  # bump when the output changes for the same sources
    out_subdir: str  # MANIFEST.json goes to <out>/<out_subdir>/
    upstreams: list[Upstream]
    sums_file: Path
    build: Builder


def run_step(
    fam: Family,
    mirror: Path | None = None,
    out: Path | None = None,
    force: bool = False,
    download: bool = False,
    quiet: bool = False,
    write_sums: bool = False,
) -> dict[str, Any]:
    """Skip when up to date, else build, check counts, write the MANIFEST; return the counts."""
    started = time.time()
    mirror, out = resolve_dirs(mirror, out, download)
    sources = Sources(fam.upstreams, read_sums(fam.sums_file), mirror, out / "_downloads")
    manifest_path = out / fam.out_subdir / "MANIFEST.json"
    if not force and not write_sums and up_to_date(manifest_path, fam.version, sources, out):
        return skipped(fam.name, manifest_path, quiet)
    if not quiet:
        where = f"mirror {mirror}" if mirror is not None else "canonical URLs (download)"
        print(f"[{fam.name}] building from {where} into {out}")
    report, outputs = Report(fam.name, quiet=quiet), Outputs(out)
    known_gaps = fam.build(sources, outputs, report)
    result = finish(fam.name, fam.version, manifest_path, sources, outputs, report, known_gaps, started)
    if write_sums:
        text = "".join(f"{sources.used[k]['sha256']}  {k}\n" for k in sorted(sources.used))
        atomic_write_bytes(fam.sums_file, text.encode("utf-8"))
        report.note(f"wrote {len(sources.used)} checksums to {fam.sums_file}")
    return result


def numbered_jsonl(path: Path, required: Iterable[str] = (), fix: str | None = None):
    """Yield (line number, row) for each non-empty line; DataError names file, line and field."""
    return iter_numbered_jsonl(path, tuple(required), fix or MIRROR_FIX)


def want(ok: bool, message: str, path: Path, line: int | None, name: str) -> None:
    """Raise a DataError for field ``name`` of ``path:line`` unless ``ok``."""
    if not ok:
        raise DataError(message, file=path, line=line, field=name, fix=MIRROR_FIX)


def want_str(row: Mapping[str, Any], names: Iterable[str], path: Path, line: int) -> None:
    for name in names:
        want(isinstance(row.get(name), str), f"expected a string, got {row.get(name)!r}", path, line, name)
