"""Idempotent data preparation: one step per data family, writing normalised JSONL under data/.

    python -m data_prep {lama,superglue,lm_bff,all} [--mirror DIR] [--out DIR] [--force]

Each family exposes ``prepare(mirror=None, out=None, force=False) -> dict`` and writes
``<out>/<family>/MANIFEST.json`` (sources with URLs and sha256, outputs with rows and sha256, counts,
code version).  See ``data_prep/<family>/README.md`` for provenance, licences, schemas and known gaps.
"""

from __future__ import annotations

FAMILIES = ("lama", "superglue", "lm_bff")
