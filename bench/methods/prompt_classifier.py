"""``prompt_classifier``: P-tuning-v2's ``--prompt`` mode, trained input prompts read by a classifier head.

What THUDM/P-tuning-v2 (@b1520c9) runs for its Prompt Tuning rows (``model/utils.py`` ``get_model``
with ``--prompt``: ``BertPromptForSequenceClassification``, ``RobertaPromptForSequenceClassification``,
``Bert/RobertaPromptForMultipleChoice``), not Lester et al.'s cloze form (``prompt_tuning``):

- the input's embeddings (word + position + segment, LayerNorm, dropout) with ``length`` trained
  vectors put before them go to the backbone as ``inputs_embeds``, so the backbone's embedding
  layer runs a second time over all of it (positions 0.. for the prompt and again for the text,
  segment 0, LayerNorm, dropout): the reference's double embedding, kept;
- the mask gets ``length`` ones in front; the backbone is frozen (in train mode while training:
  its trainer calls ``model.train()``; ``backbone_dropout: false`` turns that off);
- classification reads the first *input* token's state through the backbone's frozen pooler
  (dense + tanh; :mod:`bench.backbones.pooler`), dropout, a linear layer; multiple choice (one
  logit per option) reads ``outputs[1]``, the pooler over position 0, the first *prompt* vector
  (``choice_pool: prompt``; ``input`` reads the first input token instead);
- ``init: reference``: prompt table and head N(0, ``initializer_range``), zero bias, as the
  reference's ``from_pretrained`` fills what the checkpoint lacks; ``torch``: PyTorch defaults.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.backbones.heads import ClassifierHead, hidden_size_of
from bench.backbones.pooler import Pooler, pretrained_pooler
from bench.backbones.scoring import ScoringBatch
from bench.errors import ConfigError
from bench.methods.base import Method, Scorer
from bench.methods.deep_prompts import init_normal

INITS = ("reference", "torch")
CHOICE_POOLS = ("prompt", "input")
BASES = {"bert": "bert", "roberta": "roberta"}  # model_type -> base-model attribute of the masked-LM class


class PromptClassifier(Method):
    """Frozen backbone; trains the input prompt table and the head (labels output space)."""

    name = "prompt_classifier"
    trains = True
    tunes_backbone = False
    output_space = "labels"

    def __init__(self, length: int = 4, dropout: float = 0.1, init: str = "reference", choice_pool: str = "prompt",
                 backbone_dropout: bool = True, num_labels: int | None = None) -> None:
        if int(length) < 1:
            raise ConfigError(f"prompt_classifier needs length >= 1, got {length}")
        if init not in INITS:
            raise ConfigError(f"prompt_classifier init must be one of {INITS}, got {init!r}")
        if choice_pool not in CHOICE_POOLS:
            raise ConfigError(f"prompt_classifier choice_pool must be one of {CHOICE_POOLS}, got {choice_pool!r}")
        self.length, self.dropout, self.init = int(length), float(dropout), init
        self.choice_pool, self.backbone_dropout = choice_pool, bool(backbone_dropout)
        self.num_labels = None if num_labels is None else int(num_labels)
        self.prompt: nn.Embedding | None = None
        self.head: ClassifierHead | None = None
        self.pooler: Pooler | None = None

    def setup(self, backbone) -> None:
        super().setup(backbone)
        model = backbone.model
        model_type = getattr(model.config, "model_type", "?")
        if model_type not in BASES:
            raise ConfigError(f"prompt_classifier is P-tuning-v2's BERT/RoBERTa prompt model; not defined for "
                              f"{model_type!r}: use a bert or roberta model, or method=prompt_tuning (cloze prompts)")
        model.eval()
        model.requires_grad_(False)
        hidden = hidden_size_of(model)
        self.prompt = nn.Embedding(self.length, hidden)
        if self.init == "reference":
            init_normal(self.prompt, self._std())
        self.prompt = self.prompt.to(backbone.device)
        self.pooler = pretrained_pooler(model, hidden).to(backbone.device)
        self.head = None
        if self.num_labels is not None:
            self.set_num_labels(self.num_labels)

    def _std(self) -> float:
        return float(getattr(self.backbone.model.config, "initializer_range", 0.02))

    def set_num_labels(self, n_out: int) -> None:
        """A fresh head with ``n_out`` outputs (1: multiple choice, one logit per option); the runner calls it."""
        self.num_labels = int(n_out)
        head = ClassifierHead(hidden_size_of(self.backbone.model), self.num_labels, self.dropout, hidden_layer=False)
        if self.init == "reference":
            init_normal(head, self._std())
        self.head = head.to(self.backbone.device)

    def own_modules(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {"prompt": self.prompt}
        if self.head is not None:
            modules["head"] = self.head
        return modules

    def train_mode(self) -> None:
        super().train_mode()
        if self.backbone_dropout:  # frozen weights, live dropout (the reference trains with model.train())
            self.backbone.model.train()

    def _base(self) -> nn.Module:
        return getattr(self.backbone.model, BASES[self.backbone.model.config.model_type])

    def _check_positions(self, width: int) -> None:
        config = self.backbone.model.config
        limit = int(config.max_position_embeddings)
        if config.model_type == "roberta":
            limit -= int(config.pad_token_id) + 1  # RoBERTa's positions start after the padding index
        if self.length + width > limit:
            raise ConfigError(f"prompt_classifier: {self.length} prompt vectors + {width} input tokens exceed the "
                              f"model's {limit} positions; lower method.component.length or task.max_length")

    def hidden_states(self, batch: ScoringBatch) -> torch.Tensor:
        """The backbone's last hidden states over [prompt; input], (batch, length + seq, hidden)."""
        if batch.inputs_embeds is not None or batch.forward_patch is not None:
            raise ConfigError("prompt_classifier reads plain input ids (no soft-prompt slots, no forward patch)")
        self._check_positions(batch.input_ids.shape[1])
        base = self._base()
        embedded = base.embeddings(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids)
        rows = embedded.shape[0]
        prompts = self.prompt.weight.to(embedded.dtype).unsqueeze(0).expand(rows, -1, -1)
        mask = torch.cat([batch.attention_mask.new_ones(rows, self.length), batch.attention_mask], dim=1)
        return base(inputs_embeds=torch.cat([prompts, embedded], dim=1), attention_mask=mask).last_hidden_state

    def scorer(self) -> Scorer:
        def score(batch: ScoringBatch) -> torch.Tensor:
            if self.head is None:
                raise ConfigError("prompt_classifier: no classifier head yet; the runner calls set_num_labels(n)")
            hidden = self.hidden_states(batch)
            column = 0 if (self.num_labels == 1 and self.choice_pool == "prompt") else self.length
            return self.head(self.pooler(hidden[:, column]))

        return score
