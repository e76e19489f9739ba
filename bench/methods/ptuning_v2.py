"""``ptuning_v2`` (Liu et al. 2022): deep prompts in every layer, scored by a verbalizer or a head.

Differences from ``prefix_tuning``: no reparameterisation by default (``reparameterize: true``
adds the same MLP), prompt length 16, prefix dropout 0.1 (P-Tuning v2's code applies the
backbone's hidden dropout to the prefixes), the frozen backbone in train mode while training (its
trainer calls ``model.train()``; ``backbone_dropout: false`` turns that off), two output spaces:

- ``vocab``: the LM head at the target slots (a verbalizer at the mask), ``(n_targets, vocab)``;
- ``labels``: a trainable :class:`ClassifierHead` over the pooled representation (see
  :mod:`bench.backbones.heads`), ``(batch, num_labels)``; the backbone stays frozen.

``pool: pooler`` is P-Tuning v2's head: the checkpoint's frozen pooler (dense + tanh over the first
token, :mod:`bench.backbones.pooler`; a fresh frozen one where the checkpoint has none, as RoBERTa's),
then dropout + linear. Other pools read the raw hidden state (``head_hidden_layer: true`` adds a
trainable dense + tanh).

As P-tuning-v2's code (@b1520c9) does by default (``init: reference``, ``dropout_per_example: true``): the
prefix encoder (table or MLP) and the head start N(0, ``initializer_range``) with zero biases (``from_pretrained``
initialises the modules the checkpoint lacks), and prefix dropout draws one mask per example, after the batch
expand (``get_prompt``). ``init: torch`` keeps PyTorch's defaults (N(0, 1) tables, uniform linears).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from bench.backbones.heads import ClassifierHead, head_logits, hidden_size_of, pooled_hidden, resolve_pool
from bench.backbones.pooler import Pooler, pretrained_pooler
from bench.backbones.scoring import target_logits
from bench.errors import ConfigError
from bench.methods.base import Scorer
from bench.methods.deep_prompts import T5_SITES, init_normal
from bench.methods.prefix_tuning import PrefixTuning

OUTPUT_SPACES = ("vocab", "labels")
INITS = ("reference", "torch")  # reference: N(0, initializer_range), zero biases (from_pretrained's init); torch: defaults


class PTuningV2(PrefixTuning):
    """Deep prompts (+ a classifier head when ``output_space == "labels"``) on a frozen backbone."""

    name = "ptuning_v2"

    def __init__(self, length: int = 16, reparameterize: bool = False, mid_dim: int = 512, dropout: float = 0.1,
                 shift_positions: bool = True, t5_sites: Sequence[str] = T5_SITES, injection: str = "auto",
                 output_space: str = "vocab", num_labels: int | None = None, pool: str = "auto",
                 head_dropout: float = 0.1, head_hidden_layer: bool = False, backbone_dropout: bool = True,
                 init: str = "reference", dropout_per_example: bool = True) -> None:
        super().__init__(length, reparameterize, mid_dim, dropout, shift_positions, t5_sites, injection,
                         backbone_dropout)
        if init not in INITS:
            raise ConfigError(f"ptuning_v2 init must be one of {INITS}, got {init!r}")
        self.init = init
        self.options["dropout_per_example"] = bool(dropout_per_example)
        if output_space not in OUTPUT_SPACES:
            raise ConfigError(f"ptuning_v2 output_space must be one of {OUTPUT_SPACES}, got {output_space!r}")
        self.output_space = output_space
        self.num_labels = None if num_labels is None else int(num_labels)
        self.pool, self.head_dropout, self.head_hidden_layer = pool, float(head_dropout), bool(head_hidden_layer)
        self.head: ClassifierHead | None = None
        self.pooler: Pooler | None = None

    def setup(self, backbone) -> None:
        self.options["init_std"] = self._init_std(backbone.model)
        super().setup(backbone)
        self.head, self.pooler = None, None
        if self.output_space == "labels" and self.pool == "pooler":
            if getattr(backbone.model.config, "model_type", "") not in ("bert", "roberta", "albert"):
                raise ConfigError("ptuning_v2 pool=pooler needs a BERT-style encoder (bert, roberta, albert)")
            self.pooler = pretrained_pooler(backbone.model, hidden_size_of(backbone.model)).to(backbone.device)
        elif self.output_space == "labels":
            self.pool = resolve_pool(backbone.model, self.pool)
        if self.output_space == "labels" and self.num_labels is not None:
            self.set_num_labels(self.num_labels)

    def set_num_labels(self, n_out: int) -> None:
        """A fresh head with ``n_out`` outputs (the classification runner calls this after setup)."""
        if self.output_space != "labels":
            raise ConfigError("ptuning_v2: set_num_labels applies to output_space=labels only")
        self.num_labels = int(n_out)
        head = ClassifierHead(hidden_size_of(self.backbone.model), self.num_labels, self.head_dropout,
                              self.head_hidden_layer)
        if (std := self._init_std(self.backbone.model)) is not None:
            init_normal(head, std)
        self.head = head.to(self.backbone.device).eval()

    def _init_std(self, model: nn.Module) -> float | None:
        return float(getattr(model.config, "initializer_range", 0.02)) if self.init == "reference" else None

    def own_modules(self) -> dict[str, nn.Module]:
        modules = super().own_modules()
        if self.head is not None:
            modules["head"] = self.head
        return modules

    def scorer(self) -> Scorer:
        model = self.backbone.model
        if self.output_space == "labels":
            def score(batch):
                if self.head is None:
                    raise ConfigError("ptuning_v2: no classifier head yet; set num_labels or call set_num_labels(n)")
                if self.pooler is not None:
                    return self.head(self.pooler(pooled_hidden(model, self.with_prefix(batch), "first")))
                return head_logits(model, self.head, self.with_prefix(batch), self.pool)
            return score
        return lambda batch: target_logits(model, self.with_prefix(batch))
