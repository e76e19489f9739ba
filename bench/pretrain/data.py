"""Encode sentences to token ids with the object span, batch them, and pick the loss positions.

Masked LM (``mlm_batch``): salient-span masking (REALM): with probability ``salient_rate`` the object
mention of the line's fact is replaced by [MASK] tokens, and every other token is selected with
probability ``random_rate`` (BERT's 80% [MASK] / 10% random / 10% kept). Only selected positions go
through the output layer.

Causal LM (``clm_batch``): next-token prediction; the positions that predict an object token are
always scored and every other position with probability ``random_rate``, so the output layer runs
on a fraction of the positions. The loss is the mean over the scored positions: the other positions
are an unbiased sample of their part of the full loss, and object tokens weigh about
1 / ``random_rate`` times more than in the plain next-token loss (the causal LM's salient span).
At ``random_rate`` 0 only object tokens are predicted, and ``crop_after_object`` drops the tokens
after them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bench.pretrain.corpus import Sentence


@dataclass(frozen=True)
class Encoded:
    ids: tuple[int, ...]
    obj: tuple[int, int]  # token positions [first, last + 1) of the object mention


def _span(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    hits = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
    return (hits[0], hits[-1] + 1) if hits else None


def _window(n: int, width: int, obj: tuple[int, int], sub: tuple[int, int] | None) -> int:
    """Start of a `width`-token window inside [0, n) holding the object (and the subject when both fit)."""
    lo, hi = obj
    if sub is not None and max(hi, sub[1]) - min(lo, sub[0]) <= width:
        lo, hi = min(lo, sub[0]), max(hi, sub[1])
    start = lo - (width - (hi - lo)) // 2
    return max(0, min(start, n - width))


def encode(sentences: Sequence[Sentence], tokenizer, max_length: int, specials: bool) -> list[Encoded]:
    """Token ids (cropped to `max_length` around the object and subject) and the object's token span.

    `specials`: add the tokenizer's special tokens ([CLS] ... [SEP]) around the window. Lines whose
    object span cannot be located in the tokens are dropped.
    """
    enc = tokenizer([s.text for s in sentences], add_special_tokens=False, return_offsets_mapping=True)
    head = [tokenizer.cls_token_id] if specials else []
    tail = [tokenizer.sep_token_id] if specials else []
    width = max_length - len(head) - len(tail)
    out: list[Encoded] = []
    for sentence, ids, offsets in zip(sentences, enc["input_ids"], enc["offset_mapping"], strict=True):
        obj = _span(offsets, sentence.obj_start, sentence.obj_end)
        if obj is None or obj[1] - obj[0] > width:
            continue
        if len(ids) > width:
            sub_chars = sentence.sub_span
            sub = _span(offsets, *sub_chars) if sub_chars else None
            start = _window(len(ids), width, obj, sub)
            ids, obj = ids[start:start + width], (obj[0] - start, obj[1] - start)
        out.append(Encoded(tuple(head + list(ids) + tail), (obj[0] + len(head), obj[1] + len(head))))
    return out


def crop_after_object(items: Sequence[Encoded]) -> list[Encoded]:
    """Causal LM lines cut after their object's last token.

    With ``random_rate`` 0 only the positions that predict an object token are scored, and a causal
    model's outputs there do not depend on later tokens, so the loss is unchanged and the tokens after
    the object (about 40% of the recipe's training tokens) need not be computed.
    """
    return [Encoded(it.ids[: it.obj[1]], it.obj) for it in items]


def batches(items: Sequence[Encoded], batch_size: int, generator: torch.Generator,
            pool: int = 64) -> list[list[int]]:
    """One epoch of index batches: shuffled, then length-sorted inside pools of `pool` batches."""
    order = torch.randperm(len(items), generator=generator).tolist()
    out: list[list[int]] = []
    span = batch_size * pool
    for begin in range(0, len(order), span):
        chunk = sorted(order[begin:begin + span], key=lambda i: len(items[i].ids))
        out.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffled = torch.randperm(len(out), generator=generator).tolist()
    return [out[i] for i in shuffled]


@dataclass
class LossBatch:
    """Model inputs plus the scored positions, their targets and whether each target is an object token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    targets: torch.Tensor
    salient: torch.Tensor  # bool per target


def _pad(items: Sequence[Encoded], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(it.ids) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    obj = torch.zeros((len(items), width), dtype=torch.bool)
    for row, it in enumerate(items):
        ids[row, : len(it.ids)] = torch.tensor(it.ids, dtype=torch.long)
        mask[row, : len(it.ids)] = 1
        obj[row, it.obj[0]: it.obj[1]] = True
    return ids, mask, obj


def mlm_batch(items: Sequence[Encoded], tokenizer, salient_rate: float, random_rate: float,
              generator: torch.Generator) -> LossBatch:
    """Salient-span + random masking (see module docstring)."""
    ids, mask, obj = _pad(items, tokenizer.pad_token_id)
    special = torch.zeros_like(obj)
    for token_id in (tokenizer.cls_token_id, tokenizer.sep_token_id):
        special |= ids == token_id
    salient_rows = torch.rand(len(items), generator=generator) < salient_rate
    salient = obj & salient_rows[:, None]
    other = (mask.bool() & ~special & ~salient)
    chosen = other & (torch.rand(ids.shape, generator=generator) < random_rate)
    selected = salient | chosen
    targets = ids[selected]
    inputs = ids.clone()
    roll = torch.rand(ids.shape, generator=generator)
    random_tokens = torch.randint(len(tokenizer), ids.shape, generator=generator)
    to_mask = salient | (chosen & (roll < 0.8))
    to_random = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[to_mask] = tokenizer.mask_token_id
    inputs[to_random] = random_tokens[to_random]
    rows, cols = selected.nonzero(as_tuple=True)
    return LossBatch(inputs, mask, rows, cols, targets, salient[rows, cols])


def clm_batch(items: Sequence[Encoded], pad_id: int, random_rate: float,
              generator: torch.Generator) -> LossBatch:
    """Next-token positions: every one that predicts an object token, the others sampled."""
    ids, mask, obj = _pad(items, pad_id)
    valid = mask[:, 1:].bool()  # position t predicts token t + 1
    predicts_obj = obj[:, 1:] & valid
    sampled = valid & ~predicts_obj & (torch.rand(valid.shape, generator=generator) < random_rate)
    selected = predicts_obj | sampled
    rows, cols = selected.nonzero(as_tuple=True)
    return LossBatch(ids, mask, rows, cols, ids[rows, cols + 1], predicts_obj[rows, cols])
