"""iPET's training sets (timoschick/pet ``pet/modeling.py``: ``train_ipet``, ``generate_ipet_train_set``).

A pattern run of generation g >= 1 (``trainer.ipet_generation: g``) trains on the 32 labelled
examples plus examples of the unlabeled set labelled by the previous generation:

1. the previous generation's records of the same task, model and tag, except the run's own
   counterpart (same pattern, same seed); a random ``round(n * logits_percentage)`` of them (0.25);
2. their unlabeled logits merged (``wmean``: weighted by each run's train accuracy before training),
   softmaxed; every unlabeled example gets the argmax label;
3. ``int(n_train * scale_factor**g - n_train)`` new examples (5: 128, then 768 for 32 examples),
   split over the labels in the training set's proportions (``int`` per label); per label, drawn
   without replacement from the examples predicted as that label (repeated until there are enough),
   each with probability proportional to its highest class probability. With ``n_most_likely > 0``
   (used only when drawing from generation 0, as PET does) a label's candidates are instead the
   ``n_most_likely`` examples with the highest probability of that label.

PET draws every run's set from one random stream seeded once (``--seed``); here each run seeds its
own (from seed, pattern and generation), so a run's set does not depend on which runs came before.
Where PET loops forever (no unlabeled example is predicted as a label that needs examples), that
label's examples are drawn from the whole unlabeled set weighted by the label's probability, and the
record lists the label under ``labels_predicted_by_none``.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from bench.errors import ConfigError
from bench.superglue.data import Example
from bench.superglue.pet_stage import ensemble_from_records


def run_key(record: Mapping) -> tuple[int, int]:
    """(pattern rank, seed) of a pattern record: the run a later generation continues."""
    spec = record["spec"]
    return int(spec.get("rank") or 0), int(spec["seed"])


def examples_per_label(train: Sequence[Example], n_labels: int, n_new: int) -> list[int]:
    """PET: each label's share of the training set times ``n_new / len(train)``, rounded down."""
    multiplier = n_new / len(train)
    return [int(sum(1 for ex in train if ex.label == label) * multiplier) for label in range(n_labels)]


def new_example_count(n_train: int, scale_factor: float, generation: int) -> int:
    return int(n_train * scale_factor**generation - n_train)


def _seeds(seed: int, rank: int, generation: int) -> tuple[random.Random, np.random.RandomState]:
    key = f"ipet:{seed}:{rank}:{generation}"
    return random.Random(key), np.random.RandomState(zlib.crc32(key.encode("utf-8")))


def draw(candidates: list[tuple[Example, float]], count: int, rng: np.random.RandomState) -> list[Example]:
    """``count`` of ``candidates`` without replacement, each with probability proportional to its weight."""
    weights = np.array([w for _, w in candidates], dtype=np.float64)
    picked = rng.choice(len(candidates), size=count, replace=False, p=weights / weights.sum())
    return [candidates[i][0] for i in picked]


def ipet_train_set(previous: Sequence[Mapping], own: tuple[int, int], generation: int, train: Sequence[Example],
                   unlabeled: Sequence[Example], cfg: Mapping) -> tuple[list[Example], dict]:
    """The examples generation ``generation`` adds for the run ``own`` = (rank, seed), and what made them."""
    others = sorted((r for r in previous if run_key(r) != own), key=lambda r: r["name"])
    if not others:
        raise ConfigError(f"iPET generation {generation}: no other run of generation {generation - 1} to label with")
    py_rng, np_rng = _seeds(own[1], own[0], generation)
    k = round(len(others) * float(cfg.get("ipet_logits_percentage", 0.25)))
    if k < 1:
        raise ConfigError(f"iPET: {len(others)} other runs x ipet_logits_percentage "
                          f"{cfg.get('ipet_logits_percentage')} rounds to no run; run more patterns or seeds")
    chosen = py_rng.sample(others, k=k)
    merged = ensemble_from_records(chosen, str(cfg.get("ipet_reduction") or "wmean"), temperature=1.0)
    uids, probs = merged["uids"], merged["soft_labels"]  # softmax of the merged logits (T = 1)
    by_uid = {ex.uid: ex for ex in unlabeled}
    if set(uids) != set(by_uid):
        raise ConfigError("the previous generation scored other unlabeled examples than this run loads (task.limit?)")
    pool = [by_uid[u] for u in uids]
    predicted = probs.argmax(-1).tolist()
    n_new = new_example_count(len(train), float(cfg.get("ipet_scale_factor", 5)), generation)
    per_label = examples_per_label(train, probs.shape[1], n_new)
    most_likely = int(cfg.get("ipet_n_most_likely", -1)) if generation == 1 else -1
    out: list[Example] = []
    empty: list[int] = []
    for label, count in enumerate(per_label):
        if count == 0:
            continue
        if most_likely > 0:
            if count > most_likely:
                raise ConfigError(f"iPET: {count} examples of label {label} needed but ipet_n_most_likely is "
                                  f"{most_likely}: raise it or set it to -1")
            ranked = sorted(range(len(pool)), key=lambda i: (-float(probs[i, label]), -i))[:most_likely]
            candidates = [(pool[i], float(probs[i, label])) for i in ranked]
        else:
            candidates = [(pool[i], float(probs[i].max())) for i in range(len(pool)) if predicted[i] == label]
            if not candidates:  # PET loops forever here; every example, weighted by this label's probability
                empty.append(label)
                candidates = [(pool[i], float(probs[i, label])) for i in range(len(pool))]
            base = list(candidates)
            while len(candidates) < count:  # PET: upsample by repeating the whole list
                candidates += base
        out += [dataclasses.replace(ex, label=label, uid=f"{ex.uid}@ipet{generation}.{j}")
                for j, ex in enumerate(draw(candidates, count, np_rng))]
    info = {"generation": generation, "labelled_by": [r["name"] for r in chosen], "n_new": len(out),
            "per_label": per_label, "labels_predicted_by_none": empty}
    return out, info
