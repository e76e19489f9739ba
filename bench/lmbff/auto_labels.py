"""LM-BFF's automatic label-word search (princeton-nlp/LM-BFF ``tools/generate_labels.py`` with
``src/label_search.py``; paper section 5.1), on the suite's models.

1. The masked LM reads every training example through the manual template; its logits over the whole
   vocabulary at the mask are kept (raw logits: ``return_full_softmax`` returns the LM head's output).
2. Per class, the vocabulary is ranked by the mean of those logits over the class's examples; only
   tokens that start a word (``Ġ``, RoBERTa's byte BPE) are kept, the first ``k_likely`` of them
   (``select_likely_words``; ``run_generate_labels.sh``: 100).
3. Every assignment (one candidate per class, the Cartesian product) is scored by zero-shot accuracy
   on the training set (argmax of the assigned words' logits); the best ``n_pairs`` are kept (100).
4. Those are re-ranked by prompt-based fine-tuning on dev (``bench.lmbff.auto_stage``).

Ties: the reference sorts with ``numpy.argsort`` (introsort, not stable), so among mappings with the
same training accuracy its order depends on numpy's sort implementation; here ties keep the
enumeration order (stable sort), a documented, deterministic choice. Seed labels with nearest-neighbour
re-ranking (``--use_seed_labels``, TREC only) and the regression variant (STS-B) are not implemented.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import ConfigError
from bench.progress import eval_progress

WORD_START = "Ġ"  # RoBERTa / GPT-2 byte-BPE marker of a token that starts a word (LM-BFF keeps only these)
K_LIKELY = 100  # tools/run_generate_labels.sh K_LIKELY
N_PAIRS = 100  # tools/run_generate_labels.sh N_PAIRS (mappings kept for re-ranking)
CHUNK = 65536  # mappings scored per vectorised step


@dataclass(frozen=True)
class LabelMapping:
    """One candidate: a token id per class (label order), its zero-shot training accuracy and the words."""

    token_ids: tuple[int, ...]
    train_accuracy: float
    words: tuple[str, ...]  # the token strings without the word-start marker (what LM-BFF writes)


def mask_logits(task, backbone, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(logits over the vocabulary at the mask of every training example, their labels), frozen model."""
    if task.mode != "words" or task.family != "mlm":
        raise ConfigError("the LM-BFF label search reads a masked LM's logits at the mask: use a prompt template "
                          f"on a masked LM (this run: mode {task.mode}, family {task.family})")
    model = backbone.model
    was_training = model.training
    model.eval()
    items, rows = task.items("train"), []
    try:
        with torch.no_grad():
            for start in eval_progress(range(0, len(items), batch_size), f"{task.task} train (label search)"):
                batch = task.collate(items[start : start + batch_size])
                out = model(input_ids=batch.input_ids.to(backbone.device),
                            attention_mask=batch.attention_mask.to(backbone.device)).logits
                rows.append(out[batch.target_rows.to(out.device), batch.target_cols.to(out.device)].float().cpu())
    finally:
        model.train(was_training)
    labels = np.array([it.example.label for it in items], dtype=np.int64)
    return torch.cat(rows).numpy(), labels


def likely_words(logits: np.ndarray, labels: np.ndarray, tokens: Sequence[str], k_likely: int = K_LIKELY
                 ) -> list[list[int]]:
    """Per class (0..max label), the ``k_likely`` word-start token ids with the highest mean logit."""
    out = []
    for label in range(int(labels.max()) + 1):
        scores = logits[labels == label].mean(axis=0)
        order = np.argsort(-scores, kind="stable")
        out.append([int(i) for i in order if tokens[i].startswith(WORD_START)][:k_likely])
    return out


def mapping_accuracy(logits: np.ndarray, labels: np.ndarray, candidates: Sequence[Sequence[int]]) -> np.ndarray:
    """Zero-shot training accuracy of every mapping of ``itertools.product(*candidates)``, in that order."""
    grids = np.stack(np.meshgrid(*[np.asarray(c) for c in candidates], indexing="ij"), -1).reshape(-1, len(candidates))
    acc = np.empty(len(grids), dtype=np.float64)
    for start in range(0, len(grids), CHUNK):
        pairing = grids[start : start + CHUNK]  # (m, C)
        picked = logits[:, pairing]  # (n, m, C)
        acc[start : start + CHUNK] = (picked.argmax(-1) == labels[:, None]).mean(0)
    return acc


def search_mappings(logits: np.ndarray, labels: np.ndarray, tokens: Sequence[str], k_likely: int = K_LIKELY,
                    n_pairs: int = N_PAIRS) -> list[LabelMapping]:
    """The ``n_pairs`` best mappings by zero-shot training accuracy (ties: enumeration order)."""
    if not any(t.startswith(WORD_START) for t in tokens):
        raise ConfigError(f"no vocabulary token starts with {WORD_START!r}: LM-BFF's label search keeps only "
                          "RoBERTa-style (byte-BPE) word-start tokens; use a RoBERTa model")
    candidates = likely_words(logits, labels, tokens, k_likely)
    acc = mapping_accuracy(logits, labels, candidates)
    best = np.argsort(-acc, kind="stable")[: n_pairs if n_pairs > 0 else None]
    pairings = list(itertools.product(*candidates)) if len(acc) <= 4 * CHUNK else None
    out = []
    for index in best:
        ids = pairings[index] if pairings is not None else _nth_product(candidates, int(index))
        out.append(LabelMapping(tuple(int(i) for i in ids), float(acc[index]),
                                tuple(tokens[i][len(WORD_START):] for i in ids)))
    return out


def _nth_product(candidates: Sequence[Sequence[int]], index: int) -> tuple[int, ...]:
    """The ``index``-th element of ``itertools.product(*candidates)`` without enumerating it."""
    out = []
    for pool in reversed(candidates):
        index, pos = divmod(index, len(pool))
        out.append(pool[pos])
    return tuple(reversed(out))
