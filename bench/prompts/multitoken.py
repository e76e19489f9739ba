"""Multi-token targets (PET): score a candidate of k tokens with one target slot per token.

An :class:`Entry` is one (input, candidate) pair. Per family:

- ``mlm``: the prompt is rendered with k masks (PET trims the masks to each candidate's length);
  the candidate's i-th token is predicted at the i-th mask.
- ``clm``: the candidate is appended (teacher forcing); token i is predicted at the position
  before it, so one pass gives the exact left-to-right log-probability.
- ``seq2seq``: the candidate follows ``<extra_id_0>`` in the decoder, same as ``clm``.

Decoding (which mask is filled when), as in PET's ``MultiMaskTaskHelper`` / COPA / ReCoRD helpers:

- training: ``parallel_scores``: the sum of the log-probabilities of all candidate tokens from one
  forward pass (differentiable). For ``clm``/``seq2seq`` this is exact; for ``mlm`` every token is
  predicted with all other candidate tokens still masked.
- inference: ``iterative_scores`` with ``most_confident`` (PET's default): at each step the mask
  whose candidate token is most probable is filled with it, its log-probability is added, and the
  model is run again; ``ltr`` fills left to right; ``parallel`` is the one-pass sum.
- free decoding (PET's WSC): ``greedy_fill`` fills, at each step, the mask whose *argmax* token is
  most confident, until no mask is left; it returns the tokens generated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from bench.backbones.scoring import ScoringBatch, pad_batch
from bench.errors import ConfigError
from bench.prompts.render import RenderedPrompt

Scorer = Callable[[ScoringBatch], torch.Tensor]
STRATEGIES = ("most_confident", "ltr", "parallel")


@dataclass(frozen=True)
class Entry:
    """Inputs with one target slot per candidate token (positions index the decoder for seq2seq)."""

    input_ids: list[int]
    target_positions: list[int]
    token_ids: list[int]
    decoder_input_ids: list[int] | None = None
    soft_positions: list[int] = field(default_factory=list)
    family: str = "mlm"  # only mlm slots are masks that decoding can fill; clm/seq2seq are teacher-forced


def make_entry(rendered: RenderedPrompt, token_ids: Sequence[int], family: str) -> Entry:
    """The entry scoring ``token_ids`` in the target slot of ``rendered``.

    For ``mlm`` the prompt must have been rendered with ``num_target_tokens=len(token_ids)``."""
    tokens = list(token_ids)
    if not tokens:
        raise ConfigError("a candidate must have at least one token")
    soft = list(rendered.soft_positions)
    if family == "mlm":
        if len(rendered.target_positions) != len(tokens):
            raise ConfigError(f"prompt has {len(rendered.target_positions)} masks for a {len(tokens)}-token candidate")
        return Entry(list(rendered.input_ids), list(rendered.target_positions), tokens, None, soft)
    if family == "clm":
        last = rendered.target_positions[-1]
        ids = list(rendered.input_ids[: last + 1]) + tokens[:-1]
        return Entry(ids, list(range(last, last + len(tokens))), tokens, None, soft, "clm")
    if family == "seq2seq":
        decoder = list(rendered.decoder_input_ids or [])
        start = rendered.target_positions[0]
        return Entry(list(rendered.input_ids), list(range(start, start + len(tokens))), tokens,
                     decoder[: start + 1] + tokens[:-1], soft, "seq2seq")
    raise ConfigError(f"unknown model family {family!r}")


def entries_batch(entries: Sequence[Entry], pad_id: int, inputs: Sequence[list[int]] | None = None,
                  targets: Sequence[list[int]] | None = None) -> ScoringBatch:
    """Pad entries into one batch; ``inputs``/``targets`` replace their ids / slots (decoding steps)."""
    decoders = [e.decoder_input_ids for e in entries]
    return pad_batch(
        list(inputs) if inputs is not None else [e.input_ids for e in entries],
        list(targets) if targets is not None else [e.target_positions for e in entries],
        pad_id,
        decoder_sequences=decoders if all(d is not None for d in decoders) else None,
        soft_positions=[e.soft_positions for e in entries],
    )


def _to(batch: ScoringBatch, device: torch.device | str | None) -> ScoringBatch:
    return batch if device is None else batch.to(torch.device(device))


def parallel_scores(scorer: Scorer, entries: Sequence[Entry], pad_id: int,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Sum of log p(token) over each entry's slots from one forward pass: shape (n_entries,)."""
    batch = _to(entries_batch(entries, pad_id), device)
    log_probs = torch.log_softmax(scorer(batch).float(), dim=-1)
    gold = torch.tensor([t for e in entries for t in e.token_ids], device=log_probs.device)
    picked = log_probs.gather(1, gold[:, None]).squeeze(1)
    owner = torch.tensor([i for i, e in enumerate(entries) for _ in e.token_ids], device=log_probs.device)
    return torch.zeros(len(entries), device=log_probs.device, dtype=picked.dtype).index_add(0, owner, picked)


@torch.no_grad()
def iterative_scores(scorer: Scorer, entries: Sequence[Entry], pad_id: int, strategy: str = "most_confident",
                     device: torch.device | str | None = None) -> torch.Tensor:
    """PET's decoding-order scores: fill one mask per step (``most_confident`` or ``ltr``)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown decoding strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if strategy == "parallel" or any(e.family != "mlm" for e in entries):
        return parallel_scores(scorer, entries, pad_id, device).detach()
    inputs = [list(e.input_ids) for e in entries]
    left = [list(zip(e.target_positions, e.token_ids, strict=True)) for e in entries]
    totals = [0.0] * len(entries)
    while any(left):
        active = [i for i, slots in enumerate(left) if slots]
        batch = entries_batch([entries[i] for i in active], pad_id, [inputs[i] for i in active],
                              [[pos for pos, _ in left[i]] for i in active])
        log_probs = torch.log_softmax(scorer(_to(batch, device)).float(), dim=-1).cpu()
        row = 0
        for i in active:
            slot_lp = [log_probs[row + j, tok].item() for j, (_, tok) in enumerate(left[i])]
            row += len(left[i])
            pick = 0 if strategy == "ltr" else max(range(len(slot_lp)), key=slot_lp.__getitem__)
            pos, tok = left[i].pop(pick)
            totals[i] += slot_lp[pick]
            inputs[i][pos] = tok
    return torch.tensor(totals)


@torch.no_grad()
def greedy_fill(scorer: Scorer, entries: Sequence[Entry], pad_id: int, strategy: str = "most_confident",
                device: torch.device | str | None = None) -> list[list[int]]:
    """Free decoding of every mask (``token_ids`` ignored; mlm only): the argmax tokens, in slot order."""
    if any(e.family != "mlm" for e in entries):
        raise ConfigError("free decoding of target slots needs a masked LM (family mlm)")
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown decoding strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    inputs = [list(e.input_ids) for e in entries]
    left = [list(e.target_positions) for e in entries]
    while any(left):
        active = [i for i, slots in enumerate(left) if slots]
        batch = entries_batch([entries[i] for i in active], pad_id, [inputs[i] for i in active],
                              [left[i] for i in active])
        probs = torch.softmax(scorer(_to(batch, device)).float(), dim=-1).cpu()
        best_p, best_tok = probs.max(dim=-1)
        row = 0
        for i in active:
            n = len(left[i])
            if strategy == "parallel":
                picks = list(range(n))
            elif strategy == "ltr":
                picks = [0]
            else:
                picks = [max(range(n), key=lambda j, r=row: best_p[r + j].item())]
            for j in picks:
                inputs[i][left[i][j]] = int(best_tok[row + j])
            left[i] = [pos for j, pos in enumerate(left[i]) if j not in picks]
            row += n
    return [[inputs[i][pos] for pos in e.target_positions] for i, e in enumerate(entries)]
