"""LM-BFF's demonstration sampling (princeton-nlp/LM-BFF ``src/dataset.py``, ``FewShotDataset``).

- ``filtered_candidates``: with ``demo_filter``, the training examples are sorted by cosine
  similarity to the query (Sentence-BERT embeddings) and, per label, only the top
  ``int(len(candidates) // n_labels * rate)`` are kept (``demo_filter_rate``, default 0.5); a
  training query never demonstrates itself.
- ``one_per_label``: LM-BFF's ``select_context``: a random permutation of the candidates, the first
  example of each label taken (``num_demo`` = 1), returned in label order (the order LM-BFF
  concatenates them).
- ``random_context``: GPT-3-style in-context learning: the first ``k`` of a random permutation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch


def cosine(queries: torch.Tensor, supports: torch.Tensor) -> torch.Tensor:
    """(n_query, n_support) cosine similarities."""
    q = torch.nn.functional.normalize(queries.float(), dim=-1)
    s = torch.nn.functional.normalize(supports.float(), dim=-1)
    return q @ s.T


def filtered_candidates(similarity: Sequence[float], labels: Sequence[int], n_labels: int, rate: float | None,
                        exclude: int | None = None) -> list[int]:
    """Support indices kept for one query, most similar first (``rate`` None: every support, in order)."""
    candidates = [i for i in range(len(labels)) if i != exclude]
    if rate is None:
        return candidates
    ranked = sorted(candidates, key=lambda i: -float(similarity[i]))  # stable: equal scores keep file order
    limit = int(len(candidates) // n_labels * float(rate))
    counts: dict[int, int] = {}
    kept = []
    for i in ranked:
        if counts.get(labels[i], 0) < limit:
            counts[labels[i]] = counts.get(labels[i], 0) + 1
            kept.append(i)
    return kept


def one_per_label(candidates: Sequence[int], labels: Sequence[int], n_labels: int, rng: random.Random,
                  per_label: int = 1) -> list[int]:
    """LM-BFF's ``select_context``: shuffle, take the first ``per_label`` of each label; label order."""
    order = list(candidates)
    rng.shuffle(order)
    chosen: dict[int, list[int]] = {}
    for i in order:
        picked = chosen.setdefault(labels[i], [])
        if len(picked) < per_label:
            picked.append(i)
        if sum(len(v) for v in chosen.values()) == n_labels * per_label:
            break
    return [i for label in sorted(chosen) for i in chosen[label]]


def random_context(candidates: Sequence[int], k: int, rng: random.Random) -> list[int]:
    """GPT-3-style context: the first ``k`` of a random permutation (LM-BFF's ``gpt3_in_context_num``)."""
    order = list(candidates)
    rng.shuffle(order)
    return order[: int(k)]
