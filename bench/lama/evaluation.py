"""LAMA probing: render every fact, score all relations in length-sorted batches, P@1.

Protocol (LAMA, Petroni et al. 2019; P-Tuning, Liu et al. 2021):
- [X] is filled with the subject; [Y] is the model's mask (masked LM), the next-token position
  (causal LM: the text after [Y] is dropped) or the first answer token after ``<extra_id_0>`` (T5).
- The prediction is the argmax over the LAMA vocabulary list of the model family only (34k or
  29k), read with a gather over those ids, never a sort over the full vocabulary.
- Facts whose object is not one token of that list for this model are filtered out before scoring.
- Candidate words use their running-text form (leading space for byte-level BPE, as the
  reference code does with ``'Ġ' + token``), whatever character precedes [Y] in the template.
- ``protocol="reference"`` renders queries as THUDM/P-tuning does (``bench.lama.reference``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from bench.backbones.scoring import ScoringBatch, pad_batch, target_logits
from bench.lama.data import Fact
from bench.lama.reference import render_query
from bench.metrics import FactOutcome, p_at_1
from bench.prompts.template import Template
from bench.prompts.verbalizer import target_token_ids

Scorer = Callable[[ScoringBatch], torch.Tensor]


@dataclass
class LamaItem:
    """A rendered fact, ready to batch."""

    fact: Fact
    input_ids: list[int]
    target_positions: list[int]
    decoder_input_ids: list[int] | None
    gold_id: int
    soft_positions: list[int]


@dataclass
class Candidates:
    """The restricted vocabulary: word -> model token id, and the id tensor used for the gather."""

    word_to_id: dict[str, int]
    ids: torch.Tensor
    n_listed: int  # words in the LAMA list before dropping multi-token ones

    @property
    def n_dropped(self) -> int:
        return self.n_listed - len(self.word_to_id)


def build_candidates(words: Sequence[str], tokenizer, family: str) -> Candidates:
    """Keep the listed words that are one token for this tokenizer (running-text form)."""
    word_to_id: dict[str, int] = {}
    for word in words:
        ids = target_token_ids(word, tokenizer, prefix_space=True)
        if len(ids) == 1:
            word_to_id[word] = ids[0]
    unique_ids = sorted(set(word_to_id.values()))
    return Candidates(word_to_id, torch.tensor(unique_ids, dtype=torch.long), len(words))


def render_facts(
    facts: Sequence[Fact], template: Template, tokenizer, family: str, candidates: Candidates,
    max_length: int | None = None, protocol: str = "paper",
) -> list[LamaItem]:
    items = []
    for fact in facts:
        prompt = render_query(template, {"x": fact.sub_label}, tokenizer, family, protocol, max_length=max_length)
        items.append(LamaItem(fact, prompt.input_ids, prompt.target_positions, prompt.decoder_input_ids,
                              candidates.word_to_id[fact.obj_label], prompt.soft_positions))
    return items


def collate(items: Sequence[LamaItem], pad_id: int) -> ScoringBatch:
    decoder = [it.decoder_input_ids for it in items] if items[0].decoder_input_ids is not None else None
    return pad_batch([it.input_ids for it in items], [it.target_positions for it in items], pad_id, decoder,
                     soft_positions=[it.soft_positions for it in items])


def length_sorted_batches(items: Sequence[LamaItem], batch_size: int, token_budget: int | None = None,
                          max_padding: float = 0.2) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first: memory peaks early).

    Without ``token_budget``: ``batch_size`` items per batch. With it: as many items as fit
    ``rows x longest <= token_budget`` (at most ``batch_size`` rows), so short queries share
    bigger batches and every forward pass does about the same work; a batch also closes before
    padding would exceed ``max_padding`` of its tokens (few facts of mixed lengths)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids), reverse=True)
    if not token_budget:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    current: list[int] = []
    padding = 0
    for i in order:
        length = len(items[i].input_ids)
        width = len(items[current[0]].input_ids) if current else length
        rows = len(current) + 1
        if current and (rows > batch_size or rows * width > token_budget
                        or padding + width - length > max_padding * rows * width):
            batches.append(current)
            current, padding, width = [], 0, length
        current.append(i)
        padding += width - length
    if current:
        batches.append(current)
    return batches


@torch.inference_mode()
def predict(
    items: Sequence[LamaItem], scorer: Scorer, candidates: Candidates, pad_id: int,
    batch_size: int = 64, device: torch.device | None = None, desc: str = "LAMA",
    token_budget: int | None = None, autocast: torch.dtype | None = None,
) -> list[int]:
    """Top-1 token id (within the candidates) for every item, in input order.

    The top-1 indices stay on the device until the end (one transfer, no sync per batch), so on
    CUDA the host collates (and pins) the next batch while the device runs the previous one.
    ``token_budget``: see :func:`length_sorted_batches`. ``autocast``: run the scorer under
    ``torch.autocast`` with this dtype (e.g. bf16; predictions can then differ from float32)."""
    device = device or torch.device("cpu")
    cand = candidates.ids.to(device)
    batches = length_sorted_batches(items, batch_size, token_budget)
    cuda = device.type == "cuda"
    best: list[torch.Tensor] = []
    precision = torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
    with precision:
        for indices in tqdm(batches, desc=desc, unit="batch", leave=False, mininterval=2.0):
            batch = collate([items[i] for i in indices], pad_id)  # on CUDA: while the previous batch runs
            batch = pinned(batch).to(device, non_blocking=True) if cuda else batch.to(device)
            logits = scorer(batch)  # (n_targets, vocab); one target per item
            best.append(logits.index_select(-1, cand).argmax(dim=-1))
    predictions = [0] * len(items)
    if best:
        flat = cand[torch.cat(best)].tolist()
        for i, pred in zip((i for indices in batches for i in indices), flat, strict=True):
            predictions[i] = pred
    return predictions


def pinned(batch: ScoringBatch) -> ScoringBatch:
    """The batch with its tensors in page-locked host memory (for asynchronous copies)."""
    values = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    return type(batch)(**{k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in values.items()})


def frozen_scorer(model) -> Scorer:
    return lambda batch: target_logits(model, batch)


def score_items(items: Sequence[LamaItem], predictions: Sequence[int]) -> dict:
    outcomes = [FactOutcome(it.fact.relation, pred == it.gold_id, it.fact.reconstructed)
                for it, pred in zip(items, predictions, strict=True)]
    return p_at_1(outcomes)
