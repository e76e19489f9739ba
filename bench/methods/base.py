"""The small interface every method implements."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.backbones.scoring import ScoringBatch, target_logits

Scorer = Callable[[ScoringBatch], torch.Tensor]


class Method:
    """A tuning method decides what is trainable and how a batch is scored.

    ``setup`` attaches the method to a loaded backbone; ``scorer`` returns the function that maps
    a padded batch to logits at its target slots; ``trainable_parameters`` lists exactly the
    parameters an optimizer may change (empty for frozen, zero-shot methods).
    """

    name: str = "method"
    trains: bool = False

    def setup(self, backbone) -> None:
        self.backbone = backbone

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []

    def scorer(self) -> Scorer:
        model = self.backbone.model
        return lambda batch: target_logits(model, batch)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
