"""Scored units -> one score per option: the batch layout of SuperGLUE-style runs and its reductions.

A unit is what one target slot sequence scores: a label word at the mask (``words``), one candidate's
tokens (``options``), or one classifier input (``labels``); :func:`scatter_options` puts the units
of a batch back into a (examples, options) table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bench.backbones.scoring import ScoringBatch
from bench.prompts.multitoken import Entry
from bench.superglue import data as sg


@dataclass
class TaskBatch(ScoringBatch):
    """A scoring batch plus how its scored units map back to examples and options."""

    labels: torch.Tensor | None = None  # (n_examples,)
    unit_owner: torch.Tensor | None = None  # per unit (entry / sequence), its example
    unit_option: torch.Tensor | None = None  # per unit, its option index
    slot_tokens: torch.Tensor | None = None  # per target slot, its candidate token
    slot_owner: torch.Tensor | None = None  # per target slot, its unit
    n_examples: int = 0
    n_options: int = 0


@dataclass
class Item:
    example: sg.Example
    rendered: object = None  # words mode: the RenderedPrompt with one mask
    entries: list[Entry] = field(default_factory=list)  # options / span
    sequences: list[list[int]] = field(default_factory=list)  # labels mode
    types: list[list[int]] = field(default_factory=list)  # labels mode: token type ids per sequence (BERT), else empty


def pad_id_for(tokenizer) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if value is not None:
            return int(value)
    return 0


def word_scores(logits: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(n, vocab) logits at the mask -> (n, n_labels): the mean logit of each label's words (PET's m2c)."""
    valid = (table >= 0).to(logits.dtype)
    picked = logits[:, table.clamp(min=0)] * valid  # (n, labels, words)
    return picked.sum(-1) / valid.sum(-1)


def unit_log_probs(logits: torch.Tensor, slot_tokens: torch.Tensor, slot_owner: torch.Tensor,
                   n_units: int) -> torch.Tensor:
    """Per scored unit (candidate), the sum of log p(token) over its target slots."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(1, slot_tokens[:, None]).squeeze(1)
    return torch.zeros(n_units, device=picked.device, dtype=picked.dtype).index_add(0, slot_owner, picked)


def scatter_options(unit: torch.Tensor, owner: torch.Tensor, option: torch.Tensor, n_examples: int,
                    n_options: int) -> torch.Tensor:
    """Unit scores -> (n_examples, n_options), -inf where an example has fewer options."""
    out = torch.full((n_examples, n_options), float("-inf"), device=unit.device, dtype=unit.dtype)
    return out.index_put((owner, option), unit)
