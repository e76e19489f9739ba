"""Masked-LM inputs of multi-token options (COPA / ReCoRD choices, label words of several tokens) and WSC's
extra pad masks, in the suite's form or PET's (``task.train_choice_masks``, ``task.eval_choice_masks``,
``task.wsc_pad_draws``; timoschick/pet ``pet/task_helpers.py``, ``pet/pvp.py``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import replace

from bench.prompts.multitoken import Entry, make_entry


def _drop_masks(rendered, keep: int):
    """``rendered`` with only its first ``keep`` target masks; later positions shift left."""
    dropped = rendered.target_positions[keep:]

    def shift(positions: list[int]) -> list[int]:
        return [p - sum(d < p for d in dropped) for p in positions]

    ids = [t for i, t in enumerate(rendered.input_ids) if i not in set(dropped)]
    types = None if rendered.token_type_ids is None else \
        [t for i, t in enumerate(rendered.token_type_ids) if i not in set(dropped)]
    return replace(rendered, input_ids=ids, target_positions=list(rendered.target_positions[:keep]),
                   soft_positions=shift(rendered.soft_positions), anchor_positions=shift(rendered.anchor_positions),
                   token_type_ids=types)


def option_entries(render: Callable[[int, int | None], object], options: list[list[int]], family: str, train: bool,
                   choices: bool, task_cfg: Mapping, max_length: int) -> list[Entry]:
    """One entry per option; ``render(k, budget)`` renders the example with ``k`` target masks. ``choices``:
    the options are a choice task's candidates (PET's mask forms apply to those only)."""
    pet_form = family == "mlm" and choices
    if train and pet_form and task_cfg.get("train_choice_masks") == "longest":
        # PET's COPA / ReCoRD training input: as many masks as the longest choice, each choice scored on
        # its first masks (the rest have no target); inference renders each choice with its own masks
        rendered = render(max(len(t) for t in options), None)
        return [make_entry(replace(rendered, target_positions=rendered.target_positions[: len(t)]), t, family)
                for t in options]
    if not train and pet_form and task_cfg.get("eval_choice_masks") == "trim_longest":
        # PET's evaluation input (trim_input_ids): rendered and truncated once with the longest choice's
        # masks; each choice keeps its first masks and the surplus ones are dropped
        rendered = render(max(len(t) for t in options), None)
        return [make_entry(_drop_masks(rendered, len(t)), t, family) for t in options]
    return [make_entry(render(len(t), max_length - (len(t) - 1 if family == "clm" else 0)), t, family)
            for t in options]


def pet_pad_draws(task_cfg: Mapping, n: int) -> list[int | None]:
    """WSC's extra pad masks per training example. ``task.wsc_pad_draws: pet``: PET's one ``Random(42)``
    per pattern in example order, after the n draws its scoring of the training set before training
    takes; ``per_example``: seeded by (run seed, example) (independent of order and of other examples)."""
    if str(task_cfg.get("wsc_pad_draws") or "per_example") != "pet":
        return [None] * n
    rng = random.Random(42)  # PET's PVP seed (pvp.py), the same for every repetition
    for _ in range(n):
        rng.randint(0, 3)
    return [rng.randint(0, 3) for _ in range(n)]
