"""LM-BFF's SNLI test set: SNLI 1.0 dev in raw text, from GLUE's SNLI release. NEEDS NETWORK.

``python -m data_prep lm_bff --full --download`` downloads ``SNLI.zip`` from the canonical GLUE URL
below (the archive LM-BFF's ``data/download_dataset.sh`` data was built from: its
``tools/generate_k_shot_data.py`` copies the original ``SNLI/dev.tsv`` to every split's ``test.tsv``),
checks the zip against ``SHA256SUMS_SNLI`` (no digest is pinned yet: none could be read offline, so
the download is refused unless ``BENCH_TRUST_UNPINNED=1``; pin the printed digest after checking it),
reads ``SNLI/dev.tsv`` with the k-shot files' parser (sentence1 / sentence2 columns, gold label in
the last column) and writes ``data/lm-bff/SNLI/test.jsonl`` (9,842 rows, checked) plus
``test.source.json`` (URL, the zip's, the TSV's and the output's sha256), which runs copy into
their records.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.io_utils import atomic_write_bytes, atomic_write_text
from bench.paths import data_dir
from data_prep.common import fetch, read_sums, sha256_file

URL = "https://dl.fbaipublicfiles.com/glue/data/SNLI.zip"
MEMBER = "SNLI/dev.tsv"
SUMS = Path(__file__).with_name("SHA256SUMS_SNLI")
TEST = "SNLI/test.jsonl"  # under data/lm-bff/
SIDECAR = "test.source.json"
EXPECTED_ROWS = 9_842  # SNLI 1.0 dev pairs with a gold label (10,000 minus 158 without consensus)
FETCH = "python -m data_prep lm_bff --full --download"
PIN_FIX = f"pin the printed digest in {SUMS} (`<sha256>  SNLI.zip`) after checking it, or set BENCH_TRUST_UNPINNED=1"


def _archive(cache: Path) -> tuple[Path, str, bool]:
    pinned = read_sums(SUMS).get("SNLI.zip") if SUMS.is_file() else None
    path = fetch(URL, pinned, cache / "SNLI.zip", timeout=600.0)
    digest = sha256_file(path)
    if pinned is None:
        print(f"[lm_bff --full] SNLI.zip: sha256 {digest} (NOT pinned in {SUMS.name})")
        if os.environ.get("BENCH_TRUST_UNPINNED") != "1":
            raise DataError(f"SNLI.zip has no pinned sha256; got {digest}", file=SUMS, fix=PIN_FIX)
    return path, digest, pinned is not None


def parse(text: str, where: Path) -> list[dict[str, Any]]:
    """GLUE SNLI rows -> {premise, hypothesis, label}, as LM-BFF's processor reads them (columns 7, 8, last)."""
    from data_prep.lm_bff import NLI_LABELS, want

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    want(bool(lines), "empty file (no header)", where, 1, "header")
    header = lines[0].rstrip("\r").split("\t")
    want(header[7:9] == ["sentence1", "sentence2"], f"expected the GLUE SNLI header, got {lines[0][:60]!r}...",
         where, 1, "header")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cols = line.rstrip("\r").split("\t")
        want(len(cols) >= 11, f"expected at least 11 tab-separated columns, got {len(cols)}", where, number, "sentence2")
        want(cols[-1] in NLI_LABELS, f"expected one of {NLI_LABELS}, got {cols[-1]!r}", where, number, "gold_label")
        rows.append({"premise": cols[7], "hypothesis": cols[8], "label": cols[-1]})
    return rows


def prepare_snli_test(out: Path | None = None) -> dict[str, int]:
    """Download, verify and write LM-BFF's SNLI test set; return its row count."""
    out = out or data_dir()
    archive, zip_sha, pinned = _archive(out / "_downloads" / "lm_bff_full")
    with zipfile.ZipFile(archive) as zf:
        raw = zf.read(MEMBER)
    rows = parse(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="").read(), Path(f"{archive}!{MEMBER}"))
    if len(rows) != EXPECTED_ROWS:
        raise DataError(f"{MEMBER}: {len(rows)} rows, expected {EXPECTED_ROWS}", file=archive,
                        fix="the release changed; check the source before using it")
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    dest = out / "lm-bff" / TEST
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, payload)
    source = {"url": URL, "member": MEMBER, "zip_sha256": zip_sha, "zip_sha256_pinned": pinned,
              "member_sha256": hashlib.sha256(raw).hexdigest(), "sha256": hashlib.sha256(payload).hexdigest(),
              "rows": len(rows), "what": "SNLI 1.0 dev, raw text: LM-BFF's SNLI test set"}
    atomic_write_text(dest.with_name(SIDECAR), json.dumps(source, indent=1) + "\n")
    print(f"[lm_bff --full] wrote {dest} ({len(rows)} rows, sha256 {source['sha256']})")
    return {f"lm-bff/{TEST}": len(rows)}
