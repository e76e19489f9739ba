"""Full SuperGLUE train sets (and ReCoRD val) from the official release: NEEDS NETWORK.

``python -m data_prep superglue --full --download`` downloads the SuperGLUE v2 zips from the
canonical URL below, checks each against ``SHA256SUMS_FULL`` (the sha256 digests Hugging Face's
``super_glue`` loader pins for the same URLs: huggingface/datasets @040102f,
``datasets/super_glue/dataset_infos.json`` ``download_checksums``; not recomputed here, which has no
network; a zip without a pinned digest is refused unless ``BENCH_TRUST_UNPINNED=1``), and writes ``data/superglue/<Task>/train.jsonl``
(BoolQ, CB, COPA, MultiRC, ReCoRD) and ``data/superglue/ReCoRD/val.jsonl`` in the same normalised
form as the mirror build (``validate.normalise``). Row counts are checked against the SuperGLUE paper's.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.paths import data_dir
from data_prep.common import fetch, read_sums, sha256_file
from data_prep.superglue.validate import normalise

BASE_URL = "https://dl.fbaipublicfiles.com/glue/superglue/data/v2/{task}.zip"
SUMS = Path(__file__).with_name("SHA256SUMS_FULL")
# (task, split) -> expected rows (MultiRC/ReCoRD: passages); the gaps of the mirror build
WANTED: dict[tuple[str, str], int] = {("BoolQ", "train"): 9_427, ("CB", "train"): 250, ("COPA", "train"): 400,
                                      ("MultiRC", "train"): 456, ("ReCoRD", "train"): 65_709,
                                      ("ReCoRD", "val"): 7_481}
PIN_FIX = f"pin the printed digest in {SUMS} (`<sha256>  <Task>.zip`) after checking it, or set BENCH_TRUST_UNPINNED=1"


def _zip(task: str, cache: Path) -> Path:
    name = f"{task}.zip"
    pinned = read_sums(SUMS).get(name) if SUMS.is_file() else None
    path = fetch(BASE_URL.format(task=task), pinned, cache / name, timeout=600.0)
    if pinned is None:
        digest = sha256_file(path)
        print(f"[superglue --full] {name}: sha256 {digest} (NOT pinned in {SUMS.name})")
        if os.environ.get("BENCH_TRUST_UNPINNED") != "1":
            raise DataError(f"{name} has no pinned sha256; got {digest}", file=SUMS, fix=PIN_FIX)
    return path


def prepare_full(out: Path | None = None) -> dict[str, int]:
    """Download, verify, normalise and write the full splits the mirror lacks; return rows per output."""
    out = out or data_dir()
    counts: dict[str, int] = {}
    for task in dict.fromkeys(t for t, _ in WANTED):
        archive = _zip(task, out / "_downloads" / "superglue_full")
        with zipfile.ZipFile(archive) as zf:
            for (t, split), expected in WANTED.items():
                if t != task:
                    continue
                member = f"{task}/{split}.jsonl"
                text = io.TextIOWrapper(zf.open(member), encoding="utf-8")
                rows: list[dict[str, Any]] = []
                for line, raw in enumerate(text, 1):
                    if raw.strip():
                        row = normalise(task, json.loads(raw), True, Path(f"{archive}!{member}"), line)
                        rows.append({**row, "task": task, "split": split})
                if len(rows) != expected:
                    raise DataError(f"{member}: {len(rows)} rows, expected {expected}", file=archive,
                                    fix="the release changed; check the source before using it")
                dest = out / "superglue" / task / f"{split}.jsonl"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
                counts[f"superglue/{task}/{split}"] = len(rows)
                print(f"[superglue --full] wrote {dest} ({len(rows)} rows)")
    return counts
