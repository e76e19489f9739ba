"""A classifier head over one pooled vector per example (fine-tuning baselines, P-Tuning v2's head).

Which vector is pooled (``pool="auto"`` picks by architecture):

- ``first`` (bert, roberta, albert): the final hidden state of the first token ([CLS] / ``<s>``).
  The pretrained BERT/ALBERT pooler (dense + tanh trained on NSP/SOP) is *not* used: masked-LM
  checkpoints load without it. ``hidden_layer=True`` adds a freshly initialised dense + tanh
  before the classifier instead (the RobertaClassificationHead layout).
- ``last`` (gpt2): the final hidden state of the last non-padding token (any padding side).
- ``decoder_start`` (t5): the decoder's hidden state at position 0, fed only
  ``decoder_start_token_id``; causal attention makes it a function of the encoder output alone.
- ``mean`` (any; for t5 over the encoder output): average over non-padding tokens.

Output contract: a method that scores with a head declares ``output_space = "labels"`` and its
scorer returns float32 logits of shape ``(batch, num_labels)``, one row per batch row (target slots
are ignored); vocabulary-space methods return ``(n_targets, vocab)`` as ``target_logits`` does.
Deep prompts reach the pooled vector through the batch's ``forward_patch``.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.backbones.scoring import ScoringBatch, decoder_hidden, encoder_hidden, is_seq2seq, sequence_hidden
from bench.errors import ConfigError

POOLS = ("auto", "first", "last", "mean", "decoder_start")
_DEFAULT_POOL = {"bert": "first", "roberta": "first", "xlm-roberta": "first", "albert": "first", "gpt2": "last",
                 "t5": "decoder_start", "mt5": "decoder_start"}


def hidden_size_of(model: nn.Module) -> int:
    """Width of the backbone's final hidden states."""
    config = model.config
    for key in ("hidden_size", "n_embd", "d_model"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    raise ConfigError(f"{type(model).__name__}: config has no hidden_size / n_embd / d_model")


def resolve_pool(model: nn.Module, pool: str = "auto") -> str:
    """The concrete pooling for ``model``; ConfigError when it cannot apply."""
    if pool not in POOLS:
        raise ConfigError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    model_type = getattr(model.config, "model_type", "?")
    if pool == "auto":
        if model_type not in _DEFAULT_POOL:
            raise ConfigError(f"no default pooling for model type {model_type!r}; set pool explicitly")
        return _DEFAULT_POOL[model_type]
    if pool == "decoder_start" and not is_seq2seq(model):
        raise ConfigError(f"pool=decoder_start needs an encoder-decoder backbone, not {model_type!r}")
    return pool


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Column of each row's last non-padding token (works for left and right padding)."""
    columns = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return (columns * (mask > 0)).argmax(dim=1)


def pooled_hidden(model: nn.Module, batch: ScoringBatch, pool: str = "auto") -> torch.Tensor:
    """One vector per batch row: shape (batch, hidden), in the backbone's dtype."""
    pool = resolve_pool(model, pool)
    mask = batch.attention_mask
    if is_seq2seq(model):
        encoded = encoder_hidden(model, batch)
        if pool == "mean":
            return _masked_mean(encoded, mask)
        if pool != "decoder_start":
            raise ConfigError(f"pool={pool} is not defined for encoder-decoder models: use decoder_start or mean")
        start = torch.full((encoded.shape[0], 1), int(model.config.decoder_start_token_id), dtype=torch.long,
                           device=encoded.device)
        return decoder_hidden(model, batch, encoded, start)[:, 0]
    hidden = sequence_hidden(model, batch)
    if pool == "first":
        return hidden[:, 0]
    if pool == "last":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(mask)]
    if pool == "mean":
        return _masked_mean(hidden, mask)
    raise ConfigError(f"pool={pool} needs an encoder-decoder backbone")


class ClassifierHead(nn.Module):
    """``[dense + tanh] -> dropout -> linear``: pooled (batch, hidden) -> logits (batch, num_labels).

    Without ``hidden_layer`` it is the BertForSequenceClassification layout (dropout + linear over
    the pooled vector); with it, the RobertaClassificationHead layout (dropout, dense, tanh,
    dropout, linear). Parameters: ``hidden*num_labels + num_labels`` (+ ``hidden^2 + hidden``).
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1, hidden_layer: bool = False) -> None:
        super().__init__()
        if num_labels < 1:
            raise ConfigError(f"a classifier head needs num_labels >= 1, got {num_labels}")
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size) if hidden_layer else None
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = pooled.to(self.classifier.weight.dtype)
        if self.dense is not None:
            x = torch.tanh(self.dense(self.dropout(x)))
        return self.classifier(self.dropout(x)).float()


def head_logits(model: nn.Module, head: ClassifierHead, batch: ScoringBatch, pool: str = "auto") -> torch.Tensor:
    """The labels-space scorer body: ``head(pooled_hidden(model, batch))``, (batch, num_labels) float32."""
    return head(pooled_hidden(model, batch, pool))
