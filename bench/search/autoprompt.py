"""AutoPrompt's gradient-guided trigger search for one LAMA relation, resumable after a kill.

Per iteration (ucinlp/autoprompt ``create_trigger.py``, ``run_model``), with the masked LM frozen
in eval mode: the loss gradient at the trigger embeddings, averaged over ``accumulation_steps``
shuffled training batches; one trigger position drawn at random; its ``num_cand`` HotFlip
candidates (``bench.search.hotflip``); the current trigger and every candidate scored together in
one forward pass per batch on ``accumulation_steps`` freshly shuffled training batches (summed
gold log-probability); the best candidate replaces the token when it scores above the current
trigger (always while a [MASK] placeholder remains, as ``--print-lama`` does). After each
accepted flip the trigger's mean gold log-probability on dev is computed; the best-on-dev trigger
is the result (never a trigger that still holds a placeholder, when any other was accepted).

Randomness: iteration ``i`` draws its shuffles and position from a generator seeded by
``(seed, i)`` alone, so a search resumed from its state file continues exactly as the uninterrupted
search would (the reference draws from one global stream; its exact draws are not reproduced).
State (``<relation>.json``) is written atomically after every accepted flip and when the search ends;
a finished search asked for more iterations continues from where it ended.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.errors import ConfigError, DataError
from bench.io_utils import atomic_write_json
from bench.lama.evaluation import LamaItem
from bench.search.hotflip import hotflip_candidates
from bench.search.triggers import TriggerBatch, gold_logprob, trigger_gradient

log = logging.getLogger(__name__)
STATE_VERSION = 1


@dataclass(frozen=True)
class SearchSettings:
    """One search's hyperparameters (defaults: the reference's fact-retrieval command, README)."""

    template: str = "[X] [P:5] [Y] ."  # trigger slots = pseudo-token slots; 5 triggers as the published sets
    num_cand: int = 10  # --num-cand
    batch_size: int = 56  # --bsz: facts per gradient / candidate-scoring batch
    eval_size: int = 56  # --eval-size: facts per dev batch
    iters: int = 1000  # --iters
    accumulation_steps: int = 1  # --accumulation-steps
    filter: bool = True  # --filter: no gold objects, special tokens or capitalised tokens as triggers
    seed: int = 0  # --seed

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SearchState:
    """Where a relation's search stands; ``next_iteration`` is the first iteration still to run."""

    relation: str
    fingerprint: dict
    trigger: list[int]
    best_trigger: list[int]
    best_dev: float | None = None  # None: no accepted trigger yet (the reference's -inf)
    initial_dev: float | None = None
    next_iteration: int = 0
    accepted: list[dict] = field(default_factory=list)  # {iteration, position, token_id, train_score, dev}
    done: bool = False

    def save(self, path: Path) -> None:
        atomic_write_json(path, {"version": STATE_VERSION, **dataclasses.asdict(self)})

    @classmethod
    def load(cls, path: Path, fingerprint: dict) -> SearchState | None:
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"search state is not valid JSON ({err.msg})", file=path, line=err.lineno,
                            fix="delete the file to restart this relation's search") from err
        if raw.pop("version", None) != STATE_VERSION:
            raise DataError("search state was written by another version of the search", file=path, field="version",
                            fix="delete the file to restart this relation's search")
        if raw.get("fingerprint") != fingerprint:
            changed = sorted(k for k in set(fingerprint) | set(raw.get("fingerprint") or {})
                             if (raw.get("fingerprint") or {}).get(k) != fingerprint.get(k))
            raise ConfigError(f"{path}: a search with other settings ({', '.join(changed)}) left this state; "
                              "resuming would mix two searches. fix: pass another name= or delete the folder")
        return cls(**raw)


def _batches(items: Sequence[LamaItem], size: int, steps: int, gen: torch.Generator) -> list[list[int]]:
    """The first ``steps`` batches of one shuffled pass (fewer when the facts run out, as the reference)."""
    order = torch.randperm(len(items), generator=gen).tolist()
    return [order[s : s + size] for s in range(0, len(order), size)][:steps]


def dev_loglik(model, dev: Sequence[LamaItem], trigger: torch.Tensor, size: int, pad_id: int) -> float:
    """Mean gold log-probability over the dev facts (the reference's LAMA dev metric, minus the loss)."""
    total = 0.0
    for start in range(0, len(dev), size):
        tb = TriggerBatch.of(dev[start : start + size], pad_id, trigger.device)
        total += float(gold_logprob(model, tb, trigger[None]).sum())
    return total / len(dev)


def search_relation(
    model, tokenizer, relation: str, train: Sequence[LamaItem], dev: Sequence[LamaItem], settings: SearchSettings,
    blocked: torch.Tensor, state_path: Path, fingerprint: dict, device: torch.device | None = None,
    on_iteration: Callable[[int, SearchState, dict], None] | None = None, progress: bool = True,
) -> SearchState:
    """Run (or resume, or return the finished) search of one relation; the state file is kept up to date.

    ``on_iteration(i, state, info)`` is called after each iteration with ``info``: the flipped
    ``position``, its ``candidates`` (ids, best HotFlip score first) and their summed train ``scores``."""
    if not train or not dev:
        raise ValueError(f"relation {relation}: the search needs train and dev facts")
    device = device or torch.device("cpu")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    mask_id = tokenizer.mask_token_id
    n_trigger = len(train[0].soft_positions)
    state = SearchState.load(state_path, fingerprint)
    if state is None:
        start = [mask_id] * n_trigger
        state = SearchState(relation, fingerprint, list(start), list(start))
        state.initial_dev = dev_loglik(model, dev, torch.tensor(start, device=device), settings.eval_size, pad_id)
        state.save(state_path)
    elif state.next_iteration:
        log.info("%s: resuming at iteration %d from %s", relation, state.next_iteration, state_path)
    if state.next_iteration > settings.iters:
        raise ConfigError(f"{state_path}: this search already ran {state.next_iteration} iterations, more than "
                          f"iters={settings.iters}; fix: iters>={state.next_iteration}, or another name=")
    if state.done and state.next_iteration == settings.iters:
        return state
    state.done = False  # a finished shorter search goes on: iteration i draws the same whatever iters is
    embedding = model.get_input_embeddings().weight.detach()
    trigger = torch.tensor(state.trigger, device=device)
    bar = tqdm(range(state.next_iteration, settings.iters), desc=f"AutoPrompt {relation}", unit="iter",
               initial=state.next_iteration, total=settings.iters, disable=not progress, mininterval=2.0)
    for it in bar:
        rng = random.Random(f"autoprompt:{settings.seed}:{it}")
        gen = torch.Generator().manual_seed(rng.getrandbits(63))
        grad = None
        for idx in _batches(train, settings.batch_size, settings.accumulation_steps, gen):
            step = trigger_gradient(model, TriggerBatch.of([train[i] for i in idx], pad_id, device), trigger)
            grad = step if grad is None else grad + step
        grad = grad / settings.accumulation_steps
        position = rng.randrange(n_trigger)
        cands = hotflip_candidates(grad[position], embedding, settings.num_cand, blocked)
        options = trigger.repeat(len(cands) + 1, 1)
        options[1:, position] = cands
        scores = torch.zeros(len(options), device=device, dtype=torch.float64)
        for idx in _batches(train, settings.batch_size, settings.accumulation_steps, gen):
            tb = TriggerBatch.of([train[i] for i in idx], pad_id, device)
            scores += gold_logprob(model, tb, options).sum(dim=-1).double()  # current + every candidate, one pass
        current = float("-inf") if bool((trigger == mask_id).any()) else float(scores[0])
        best = int(scores[1:].argmax())
        if float(scores[1 + best]) > current:
            trigger[position] = cands[best]
            dev_value = dev_loglik(model, dev, trigger, settings.eval_size, pad_id)
            held = None if mask_id in state.best_trigger else state.best_dev
            if held is None or dev_value > held:
                state.best_trigger, state.best_dev = trigger.tolist(), dev_value
            state.trigger = trigger.tolist()
            state.accepted.append({"iteration": it, "position": position, "token_id": int(cands[best]),
                                   "train_score": float(scores[1 + best]), "dev": dev_value})
            state.next_iteration = it + 1
            state.save(state_path)
            bar.set_postfix(accepted=len(state.accepted), best_dev=f"{state.best_dev:.3f}")
        state.next_iteration = it + 1
        if on_iteration is not None:
            on_iteration(it, state, {"position": position, "candidates": cands.tolist(),
                                     "scores": scores[1:].tolist(), "current": float(scores[0])})
    state.done = True
    state.save(state_path)
    return state
