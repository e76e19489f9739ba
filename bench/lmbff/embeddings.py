"""Sentence-BERT embeddings for LM-BFF's demonstration filter, computed once per file and cached.

LM-BFF embeds every train / dev / test sentence with Sentence-BERT (``sbert-roberta-large``,
princeton-nlp/LM-BFF ``tools/get_sbert_embedding.py``) and keeps, per query, the most similar
training examples by cosine similarity. Offline we use the local Sentence-BERT model
all-MiniLM-L6-v2 (``../shared/data/models/all-MiniLM-L6-v2``, see its PROVENANCE.md), loaded with
transformers and pooled as sentence-transformers does: the mean of the token states over the
attention mask, then L2-normalised. A sentence pair (SNLI) is embedded as its two sentences joined
by a space (LM-BFF's tool concatenates ``sentence1 + ' ' + sentence2``).

Cache: ``<results>/cache/lmbff_embeddings/<model>-<sha256 of the file>[-<rows>].pt``: every row of the
file, or (smoke runs that score a few rows) only the rows asked for, in the order asked.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from bench.errors import MissingWeightsError
from bench.io_utils import read_jsonl, sha256_file
from bench.paths import REPO_ROOT, results_dir

log = logging.getLogger(__name__)
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
ENCODER_FIX = ("put the sentence-transformers folder all-MiniLM-L6-v2 (config.json, model.safetensors, "
               "tokenizer.json) under ../shared/data/models/, or set BENCH_SBERT_DIR / "
               "method.component.encoder_path to a local Sentence-BERT folder")


def encoder_dir(path: str | Path | None = None) -> Path:
    """The encoder folder: ``path``, ``$BENCH_SBERT_DIR``, or ``../shared/data/models/all-MiniLM-L6-v2``."""
    value = path or os.environ.get("BENCH_SBERT_DIR")
    folder = Path(value).expanduser() if value else REPO_ROOT.parent / "shared" / "data" / "models" / DEFAULT_ENCODER
    if not (folder / "config.json").is_file():
        raise MissingWeightsError(f"the Sentence-BERT encoder for LM-BFF's demonstration filter is missing at "
                                  f"{folder}; fix: {ENCODER_FIX}")
    return folder


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states where ``mask`` is 1 (sentence-transformers' mean pooling)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@torch.no_grad()
def encode(texts: Sequence[str], folder: Path, batch_size: int = 64) -> torch.Tensor:
    """(n, dim) L2-normalised embeddings of ``texts`` on the CPU."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, max_length=256,
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        out.append(torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1))
    return torch.cat(out) if out else torch.zeros(0, model.config.hidden_size)


def row_text(row: dict) -> str:
    return str(row["sentence"]) if "sentence" in row else f"{row['premise']} {row['hypothesis']}"


def file_embeddings(path: Path, encoder: str | Path | None = None, cache: Path | None = None,
                    rows: Sequence[int] | None = None) -> torch.Tensor:
    """Embeddings of the rows of a split file (all of them, or ``rows`` in that order), cached by the file's
    hash, the encoder folder and the rows."""
    folder = encoder_dir(encoder)
    digest = sha256_file(path)
    tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
    table = read_jsonl(path)
    rows = list(range(len(table))) if rows is None else [int(r) for r in rows]
    part = "" if rows == list(range(len(table))) else "-" + hashlib.sha256(str(rows).encode()).hexdigest()[:8]
    cache = (cache or results_dir() / "cache" / "lmbff_embeddings") / f"{folder.name}-{tag}-{digest[:16]}{part}.pt"
    if cache.is_file():
        return torch.load(cache, map_location="cpu", weights_only=True)
    log.info("embedding %d rows of %s with %s (cached at %s)", len(rows), path, folder.name, cache)
    emb = encode([row_text(table[r]) for r in rows], folder)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    torch.save(emb, tmp)
    tmp.replace(cache)
    return emb
