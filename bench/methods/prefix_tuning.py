"""``prefix_tuning`` (Li & Liang 2021): trainable key/value prefixes in every layer of a frozen model.

Defaults follow the paper: prefix length 10, reparameterised during training through
``Embedding(L, d) -> Linear(d, 512) -> tanh -> Linear(512, layers*2*hidden)`` (512 for
table-to-text, 800 for summarisation), no prefix dropout; the frozen backbone stays in eval
mode while training unless ``backbone_dropout``. ``merge()`` drops the MLP and keeps the
prefixes it computes; a merged file loads into an unmerged method (it merges first). For T5,
prefixes go to the encoder self-attention, the decoder self-attention and the cross-attention,
each with its own MLP, as Li & Liang's encoder-decoder code does (``t5_sites`` picks a subset).
Mechanics and per-family details: :mod:`bench.methods.deep_prompts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from bench.backbones.scoring import ScoringBatch, target_logits
from bench.methods.base import Method, Scorer
from bench.methods.deep_prompts import T5_SITES, DeepPrefix, DeepPrompts


class PrefixTuning(Method):
    """Frozen backbone; trains only the prefixes (and their MLP while reparameterised)."""

    name = "prefix_tuning"
    trains = True
    tunes_backbone = False
    output_space = "vocab"

    def __init__(self, length: int = 10, reparameterize: bool = True, mid_dim: int = 512, dropout: float = 0.0,
                 shift_positions: bool = True, t5_sites: Sequence[str] = T5_SITES, injection: str = "auto",
                 backbone_dropout: bool = False) -> None:
        self.backbone_dropout = bool(backbone_dropout)
        self.options = {"length": int(length), "reparameterize": bool(reparameterize), "mid_dim": int(mid_dim),
                        "dropout": float(dropout), "shift_positions": bool(shift_positions),
                        "t5_sites": tuple(t5_sites), "injection": str(injection)}
        self.prompts: DeepPrompts | None = None

    def setup(self, backbone) -> None:
        super().setup(backbone)
        model = backbone.model
        model.eval()
        model.requires_grad_(False)
        self.prompts = DeepPrompts(model, **self.options).to(backbone.device).eval()  # fit() calls train_mode

    def own_modules(self) -> dict[str, nn.Module]:
        return {"prefix": self.prompts}

    def train_mode(self) -> None:
        super().train_mode()
        if self.backbone_dropout:  # frozen weights, live dropout (P-Tuning v2 trains with model.train())
            self.backbone.model.train()

    def patch(self) -> DeepPrefix:
        """Prefixes for one scorer call (recomputed each call, so gradients reach the MLP)."""
        return self.prompts.patch()

    def with_prefix(self, batch: ScoringBatch) -> ScoringBatch:
        return replace(batch, forward_patch=self.patch())

    def scorer(self) -> Scorer:
        model = self.backbone.model
        return lambda batch: target_logits(model, self.with_prefix(batch))

    def merge(self) -> None:
        """Replace the reparameterisation MLPs by the prefix tables they compute (same scores)."""
        self.prompts.merge()

    def load_trainable(self, path: str | Path) -> None:
        saved = torch.load(Path(path), map_location="cpu", weights_only=True)
        keys = saved.get("modules", {}).get("prefix", {})
        if self.prompts.reparameterized and keys and not any(".transform." in k for k in keys):
            self.merge()  # a merged export: load its tables
        super().load_trainable(path)
