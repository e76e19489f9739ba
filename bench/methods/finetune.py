"""``finetune``: standard fine-tuning, every backbone weight on the pooled path plus a new head.

Pooling (``bench.backbones.heads.pooled_hidden``, ``pool: auto``): the first token ([CLS] / <s>)
for BERT/RoBERTa/ALBERT, the last non-padding token for GPT-2, the decoder's first position for
T5. Head: ``ClassifierHead`` (``hidden_layer: true`` = dropout, dense + tanh, dropout, linear: the
RoBERTa classification head; masked-LM checkpoints carry no pretrained BERT pooler). The LM
head's own weights (e.g. BERT's ``cls.predictions.transform`` and output bias) are frozen: they
take no part in the forward pass; weights tied to the input embeddings stay trainable.
Inputs are the task's plain (text_a, text_b) pairs, not a template
(``bench.superglue.data.classifier_pairs``); COPA and ReCoRD are multiple choice (one sequence
per option, one logit each), so the runner asks for ``set_num_labels(1)`` there.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.backbones.heads import ClassifierHead, hidden_size_of, pooled_hidden, resolve_pool
from bench.backbones.scoring import ScoringBatch
from bench.errors import ConfigError
from bench.methods.base import Method, Scorer

LM_HEADS = ("cls", "lm_head", "predictions")  # BERT, RoBERTa/GPT-2/T5, ALBERT


def lm_head_only_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the LM head that are not shared with the input embeddings."""
    head = next((getattr(model, name) for name in LM_HEADS if isinstance(getattr(model, name, None), nn.Module)), None)
    if head is None:
        return []
    shared = {id(p) for p in model.get_input_embeddings().parameters()}
    return [p for p in head.parameters() if id(p) not in shared]


class FineTune(Method):
    """Backbone + head trainable; the scorer returns ``(batch, n_out)`` float32 label scores."""

    name = "finetune"
    trains = True
    tunes_backbone = True
    output_space = "labels"

    def __init__(self, dropout: float = 0.1, hidden_layer: bool = True, pool: str = "auto") -> None:
        self.dropout, self.hidden_layer, self.pool = float(dropout), bool(hidden_layer), pool
        self.head: ClassifierHead | None = None

    def setup(self, backbone) -> None:
        super().setup(backbone)
        self.head = None
        self.pool = resolve_pool(backbone.model, self.pool)
        backbone.model.requires_grad_(True)
        for param in lm_head_only_parameters(backbone.model):
            param.requires_grad_(False)
        backbone.model.eval()

    def set_num_labels(self, n_out: int) -> None:
        """A fresh head with ``n_out`` outputs (1 for multiple choice); called by the runner."""
        head = ClassifierHead(hidden_size_of(self.backbone.model), int(n_out), self.dropout, self.hidden_layer)
        self.head = head.to(self.backbone.device)

    def own_modules(self) -> dict[str, nn.Module]:
        return {"head": self.head} if self.head is not None else {}

    def scorer(self) -> Scorer:
        model = self.backbone.model

        def score(batch: ScoringBatch) -> torch.Tensor:
            if self.head is None:
                raise ConfigError("finetune: no classifier head yet; the runner calls set_num_labels(n) first")
            return self.head(pooled_hidden(model, batch, self.pool))

        return score
