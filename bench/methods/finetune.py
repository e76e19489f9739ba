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

``head: auto_model`` builds what transformers' ``AutoModelForSequenceClassification`` /
``AutoModelForMultipleChoice`` put on ALBERT, BERT and RoBERTa (what P-tuning-v2's fine-tuning path runs,
``model/utils.py`` ``get_model``, and PET's distilled classifier): ALBERT, BERT, and all for multiple choice,
the checkpoint's pooler
(dense + tanh on the first token, trained with the backbone; a fresh one where the checkpoint has
none), dropout, linear; RoBERTa classification ``RobertaClassificationHead`` (dropout, dense, tanh,
dropout, linear on ``<s>``). ``init: reference`` starts the new layers N(0, ``initializer_range``)
with zero biases, as ``from_pretrained`` fills what a checkpoint lacks; ``init: torch`` keeps
PyTorch's defaults. ``freeze_backbone: true`` trains the head alone over a frozen backbone (pooler
included) left in train mode, as that path does for multiple choice (``get_trainer.py``
``fix_bert=True`` for COPA): a frozen-backbone run, its own row.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from bench.backbones.heads import ClassifierHead, hidden_size_of, pooled_hidden, resolve_pool
from bench.backbones.pooler import Pooler, pretrained_pooler
from bench.backbones.scoring import ScoringBatch
from bench.errors import ConfigError
from bench.methods.base import Method, Scorer
from bench.methods.deep_prompts import init_normal

log = logging.getLogger(__name__)

HEADS = ("suite", "auto_model")  # suite: ClassifierHead on the pooled token | auto_model: transformers' Auto* heads
INITS = ("torch", "reference")  # torch: PyTorch defaults | reference: N(0, initializer_range), zero biases

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

    def __init__(self, dropout: float = 0.1, hidden_layer: bool = True, pool: str = "auto", head: str = "suite",
                 init: str = "torch", freeze_backbone: bool = False) -> None:
        if head not in HEADS:
            raise ConfigError(f"finetune head must be one of {HEADS}, got {head!r}")
        if init not in INITS:
            raise ConfigError(f"finetune init must be one of {INITS}, got {init!r}")
        self.dropout, self.hidden_layer, self.pool = float(dropout), bool(hidden_layer), pool
        self.head_layout, self.init = head, init
        self.freeze_backbone = bool(freeze_backbone)
        self.tunes_backbone = not self.freeze_backbone  # declared per run: checked before weights load
        self.head: ClassifierHead | None = None
        self.pooler: Pooler | None = None

    def setup(self, backbone) -> None:
        super().setup(backbone)
        self.head, self.pooler = None, None
        if self.head_layout == "auto_model":
            model_type = getattr(backbone.model.config, "model_type", "?")
            if model_type not in ("albert", "bert", "roberta"):
                raise ConfigError(f"finetune head=auto_model is defined for albert, bert and roberta, not "
                                  f"{model_type!r}: use head=suite")
            self.pool = "first"
        self.pool = resolve_pool(backbone.model, self.pool)
        backbone.model.requires_grad_(not self.freeze_backbone)
        for param in lm_head_only_parameters(backbone.model):
            param.requires_grad_(False)
        backbone.model.eval()

    def set_num_labels(self, n_out: int) -> None:
        """A fresh head with ``n_out`` outputs (1 for multiple choice); called by the runner."""
        model, hidden_layer = self.backbone.model, self.hidden_layer
        hidden = hidden_size_of(model)
        self.pooler = None
        if self.head_layout == "auto_model":
            # ALBERT / BERT classify the pooled output; *ForMultipleChoice read the pooler too
            pooled = int(n_out) == 1 or model.config.model_type in ("albert", "bert")
            hidden_layer = not pooled  # RobertaClassificationHead: its own dense + tanh
            if pooled:  # part of BertModel / RobertaModel: tuned or frozen with it
                pooler = pretrained_pooler(model, hidden).requires_grad_(not self.freeze_backbone)
                self.pooler = pooler.to(self.backbone.device)
                log.info("finetune head=auto_model: pooler %s", "read from the checkpoint" if pooler.source ==
                         "checkpoint" else "new (the checkpoint has none, as from_pretrained would give)")
        head = ClassifierHead(hidden, int(n_out), self.dropout, hidden_layer)
        if self.init == "reference":
            init_normal(head, float(getattr(model.config, "initializer_range", 0.02)))
        self.head = head.to(self.backbone.device)

    def own_modules(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {"head": self.head} if self.head is not None else {}
        if self.pooler is not None:
            modules["pooler"] = self.pooler
        return modules

    def train_mode(self) -> None:
        super().train_mode()
        if self.freeze_backbone:  # frozen weights, live dropout (the reference trains with model.train())
            self.backbone.model.train()

    def scorer(self) -> Scorer:
        model = self.backbone.model

        def score(batch: ScoringBatch) -> torch.Tensor:
            if self.head is None:
                raise ConfigError("finetune: no classifier head yet; the runner calls set_num_labels(n) first")
            pooled = pooled_hidden(model, batch, self.pool)
            return self.head(self.pooler(pooled) if self.pooler is not None else pooled)

        return score
