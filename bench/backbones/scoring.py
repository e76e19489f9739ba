"""One scoring interface for the three backbone families: logits at the target slots only.

The LM head is applied to the hidden states at the target positions, not to every position,
so a batch costs one encoder pass plus ``n_targets x vocab`` head work (the dominant cost of a
full-vocabulary head on long inputs). Architectures without a known head attribute fall back
to the full forward pass and index its logits: same numbers, more work.

A batch may carry a ``forward_patch`` (deep prompts: per-layer key/value prefixes). It is called
once per backbone call with the part being run (``"model"`` for an encoder-only or decoder-only
base model, ``"encoder"``/``"decoder"`` for seq2seq) and that call's keyword arguments, and
returns them with its own inputs added (``past_key_values``, a mask extended by the prefix length,
``position_ids``). Batches without one run exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch
from torch import nn

PARTS = ("model", "encoder", "decoder")


class ForwardPatch(Protocol):
    """Adds inputs to one backbone call; must build fresh state (e.g. caches) on every call."""

    def __call__(self, part: str, kwargs: dict[str, Any]) -> dict[str, Any]: ...

# masked / causal LM class -> (base-model attribute, head attribute applied to hidden states)
_HEADS: dict[str, tuple[str, str]] = {
    "BertForMaskedLM": ("bert", "cls"),
    "RobertaForMaskedLM": ("roberta", "lm_head"),
    "XLMRobertaForMaskedLM": ("roberta", "lm_head"),
    "AlbertForMaskedLM": ("albert", "predictions"),
    "GPT2LMHeadModel": ("transformer", "lm_head"),
}


@dataclass
class ScoringBatch:
    """Padded model inputs plus, per target slot, its batch row and column."""

    input_ids: torch.Tensor  # (batch, seq)
    attention_mask: torch.Tensor  # (batch, seq)
    target_rows: torch.Tensor  # (n_targets,) batch index of each target
    target_cols: torch.Tensor  # (n_targets,) position (in the decoder for seq2seq)
    decoder_input_ids: torch.Tensor | None = None  # (batch, dec_seq), seq2seq only
    inputs_embeds: torch.Tensor | None = None  # replaces input_ids when soft prompts are used
    soft_rows: torch.Tensor | None = None  # (n_soft,) batch index of each pseudo-token slot
    soft_cols: torch.Tensor | None = None  # (n_soft,) its position in input_ids
    soft_ids: torch.Tensor | None = None  # (n_soft,) which prompt vector fills it (prompt k: k * len + j)
    forward_patch: ForwardPatch | None = None  # deep prompts: adds past_key_values etc. to each backbone call
    token_type_ids: torch.Tensor | None = None  # (batch, seq) segment ids for BERT/ALBERT sentence pairs
    # host-side facts about the pseudo-token slots, so that checks need no device sync per step
    soft_per_row: tuple[int, ...] | None = None  # pseudo tokens in each row
    soft_max_id: int | None = None  # largest prompt vector index asked for

    def to(self, device: torch.device, non_blocking: bool = False) -> ScoringBatch:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return ScoringBatch(**{k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
                               for k, v in values.items()})


def pad_batch(
    sequences: list[list[int]],
    targets: list[list[int]],
    pad_id: int,
    decoder_sequences: list[list[int]] | None = None,
    soft_positions: list[list[int]] | None = None,
    prompt_index: list[int] | None = None,
    token_type_ids: list[list[int] | None] | None = None,
) -> ScoringBatch:
    """Right-pad token id lists and flatten their target (and pseudo-token) positions.

    The j-th pseudo token of example i gets vector ``prompt_index[i] * n_i + j`` (n_i its number
    of pseudo tokens), so several prompts of equal length can share one batch."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    rows = [row for row, cols in enumerate(targets) for _ in cols]
    cols = [col for cols_ in targets for col in cols_]
    decoder = None
    if decoder_sequences is not None:
        dec_width = max(len(s) for s in decoder_sequences)
        decoder = torch.full((len(sequences), dec_width), pad_id, dtype=torch.long)
        for row, seq in enumerate(decoder_sequences):
            decoder[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    batch = ScoringBatch(input_ids, mask, torch.tensor(rows, dtype=torch.long),
                         torch.tensor(cols, dtype=torch.long), decoder)
    if soft_positions is not None and any(soft_positions):
        prompt_index = prompt_index or [0] * len(sequences)
        soft = [(row, col, prompt_index[row] * len(cols_) + j)
                for row, cols_ in enumerate(soft_positions) for j, col in enumerate(cols_)]
        batch.soft_rows, batch.soft_cols, batch.soft_ids = (torch.tensor(v, dtype=torch.long) for v in zip(*soft, strict=True))
        batch.soft_per_row = tuple(len(cols_) for cols_ in soft_positions)
        batch.soft_max_id = max(k for _, _, k in soft)
    if token_type_ids is not None and any(t for t in token_type_ids):
        types = torch.zeros((len(sequences), width), dtype=torch.long)  # padding is segment 0, masked anyway
        for row, seq in enumerate(token_type_ids):
            if seq:
                types[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        batch.token_type_ids = types
    return batch


def _model_inputs(batch: ScoringBatch) -> dict[str, torch.Tensor]:
    if batch.inputs_embeds is not None:
        kwargs = {"inputs_embeds": batch.inputs_embeds, "attention_mask": batch.attention_mask}
    else:
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if batch.token_type_ids is not None:
        kwargs["token_type_ids"] = batch.token_type_ids
    return kwargs


def patched(batch: ScoringBatch, part: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` for one backbone call, with the batch's forward patch applied (if any)."""
    return kwargs if batch.forward_patch is None else batch.forward_patch(part, kwargs)


def is_seq2seq(model: nn.Module) -> bool:
    return hasattr(model, "get_encoder") and hasattr(model, "decoder")


def sequence_hidden(model: nn.Module, batch: ScoringBatch) -> torch.Tensor:
    """Last hidden states (batch, seq, hidden) of an encoder-only or decoder-only base model."""
    name = type(model).__name__
    base = getattr(model, _HEADS[name][0]) if name in _HEADS else model.base_model
    return base(**patched(batch, "model", _model_inputs(batch))).last_hidden_state


def encoder_hidden(model: nn.Module, batch: ScoringBatch) -> torch.Tensor:
    """Seq2seq encoder output (batch, seq, hidden)."""
    return model.get_encoder()(**patched(batch, "encoder", _model_inputs(batch))).last_hidden_state


def decoder_hidden(model: nn.Module, batch: ScoringBatch, encoder_states: torch.Tensor,
                   decoder_input_ids: torch.Tensor) -> torch.Tensor:
    """Seq2seq decoder output (batch, dec_seq, hidden) over ``encoder_states``."""
    kwargs = {"input_ids": decoder_input_ids, "encoder_hidden_states": encoder_states,
              "encoder_attention_mask": batch.attention_mask}
    return model.decoder(**patched(batch, "decoder", kwargs)).last_hidden_state


def target_hidden_and_head(model: nn.Module, batch: ScoringBatch) -> tuple[torch.Tensor, nn.Module] | None:
    """Hidden states at the targets and the head that maps them to logits, when the class is known."""
    name = type(model).__name__
    if name in _HEADS:
        hidden = sequence_hidden(model, batch)
        return hidden[batch.target_rows, batch.target_cols], getattr(model, _HEADS[name][1])
    if batch.decoder_input_ids is not None and is_seq2seq(model):
        decoded = decoder_hidden(model, batch, encoder_hidden(model, batch), batch.decoder_input_ids)
        hidden = decoded[batch.target_rows, batch.target_cols]
        config = model.config
        if getattr(config, "scale_decoder_outputs", getattr(config, "tie_word_embeddings", False)):
            hidden = hidden * (config.d_model**-0.5)  # T5 rescales before its tied LM head
        return hidden, model.lm_head
    return None


def target_logits(model: nn.Module, batch: ScoringBatch) -> torch.Tensor:
    """Vocabulary logits at every target slot of the batch: shape (n_targets, vocab), float32."""
    found = target_hidden_and_head(model, batch)
    if found is not None:
        hidden, head = found
        return head(hidden).float()
    if batch.forward_patch is not None and batch.decoder_input_ids is not None:
        raise ValueError(f"{type(model).__name__}: forward patches on seq2seq models need get_encoder() and .decoder")
    kwargs = patched(batch, "model", _model_inputs(batch))
    if batch.decoder_input_ids is not None:
        kwargs["decoder_input_ids"] = batch.decoder_input_ids
    logits = model(**kwargs).logits
    return logits[batch.target_rows, batch.target_cols].float()
