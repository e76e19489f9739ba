"""SuperGLUE metrics, written out plainly (``evaluate.load`` fetches metric code from the network).

- ``accuracy``: BoolQ, COPA, RTE, WiC, WSC (and CB's first number).
- ``f1_macro``: CB's second number, the unweighted mean of per-class F1 over the 3 classes; a class
  that is never predicted (or never gold) has F1 0, it is not dropped from the mean.
- MultiRC: ``f1a`` is binary F1 of the positive class over all answer options pooled; ``em`` is the
  fraction of questions whose answer options are *all* predicted right.
- ReCoRD: per query, token ``f1`` and ``em`` against each gold answer after SQuAD normalisation
  (lower case, punctuation and the articles a/an/the removed, whitespace collapsed), max over the
  gold answers, then averaged over queries.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable, Sequence

# per task: the metrics reported (in the papers' order); the selection value is their mean
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "BoolQ": ("accuracy",), "CB": ("accuracy", "f1_macro"), "COPA": ("accuracy",),
    "MultiRC": ("f1a", "em"), "ReCoRD": ("f1", "em"), "RTE": ("accuracy",), "WiC": ("accuracy",),
    "WSC": ("accuracy",),
}


def accuracy(predictions: Sequence[Hashable], golds: Sequence[Hashable]) -> float:
    _same_length(predictions, golds)
    return sum(p == g for p, g in zip(predictions, golds, strict=True)) / len(golds) if golds else 0.0


def _f1(tp: int, fp: int, fn: int) -> float:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def per_class_f1(predictions: Sequence[Hashable], golds: Sequence[Hashable],
                 labels: Sequence[Hashable]) -> dict[Hashable, float]:
    _same_length(predictions, golds)
    out = {}
    for label in labels:
        tp = sum(p == label and g == label for p, g in zip(predictions, golds, strict=True))
        fp = sum(p == label and g != label for p, g in zip(predictions, golds, strict=True))
        fn = sum(p != label and g == label for p, g in zip(predictions, golds, strict=True))
        out[label] = _f1(tp, fp, fn)
    return out


def f1_macro(predictions: Sequence[Hashable], golds: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
    """Mean F1 over ``labels`` (all of them, predicted or not)."""
    scores = per_class_f1(predictions, golds, labels)
    return sum(scores.values()) / len(scores) if scores else 0.0


def multirc_scores(predictions: Sequence[int], golds: Sequence[int], questions: Sequence[Hashable]) -> dict[str, float]:
    """``f1a`` over all answer options and ``em`` per question (all of its options right)."""
    _same_length(predictions, golds)
    _same_length(predictions, questions)
    pairs = list(zip(predictions, golds, strict=True))
    tp = sum(p == 1 and g == 1 for p, g in pairs)
    fp = sum(p == 1 and g != 1 for p, g in pairs)
    fn = sum(p != 1 and g == 1 for p, g in pairs)
    all_right: dict[Hashable, bool] = {}
    for (p, g), question in zip(pairs, questions, strict=True):
        all_right[question] = all_right.get(question, True) and p == g
    em = sum(all_right.values()) / len(all_right) if all_right else 0.0
    return {"f1a": _f1(tp, fp, fn), "em": em, "n_questions": len(all_right), "n_answers": len(pairs)}


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def record_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Max-over-gold-answers token F1 and EM, averaged over queries."""
    _same_length(predictions, answers)
    if not predictions:
        return {"f1": 0.0, "em": 0.0, "n_queries": 0}
    f1 = [max((token_f1(p, a) for a in golds), default=0.0) for p, golds in zip(predictions, answers, strict=True)]
    em = [max((exact_match(p, a) for a in golds), default=0.0) for p, golds in zip(predictions, answers, strict=True)]
    return {"f1": sum(f1) / len(f1), "em": sum(em) / len(em), "n_queries": len(f1)}


def words_match(predicted: str, gold: str) -> bool:
    """PET's WSC rule (from T5): lower-cased letter-only words, one list contained in the other."""
    a = [w for w in re.split("[^a-zA-Z]", predicted.lower().strip()) if w]
    b = [w for w in re.split("[^a-zA-Z]", gold.lower().strip()) if w]
    return all(w in b for w in a) or all(w in a for w in b)


def superglue_metrics(task: str, examples: Sequence, preds: Sequence[int]) -> dict:
    """Record metrics for predicted option indices: ``overall`` (the task's metrics, ``accuracy``,
    ``n`` and ``score`` = the mean of ``TASK_METRICS[task]``, the selection value) and ``groups``
    (per gold label: n, accuracy, how often it was predicted)."""
    from bench.superglue.data import LABELS

    labels = LABELS[task]
    golds = [ex.label for ex in examples]
    overall: dict = {"n": len(examples)}
    if task == "ReCoRD":
        overall.update(record_scores([ex.choices[p] for ex, p in zip(examples, preds, strict=True)],
                                     [ex.answers for ex in examples]))
    else:
        overall["accuracy"] = accuracy(preds, golds)
    if task == "MultiRC":
        overall.update(multirc_scores(preds, golds, [ex.group for ex in examples]))
    if task == "CB":
        overall["f1_macro"] = f1_macro(preds, golds, range(len(labels)))
    groups = {}
    for index, name in enumerate(labels or ()):
        hits = [p == g for p, g in zip(preds, golds, strict=True) if g == index]
        groups[name] = {"n": len(hits), "n_predicted": sum(p == index for p in preds),
                        "accuracy": sum(hits) / len(hits) if hits else None}
    overall["score"] = sum(overall[m] for m in TASK_METRICS[task]) / len(TASK_METRICS[task])
    return {"overall": overall, "groups": groups}


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"predictions and golds differ in length: {len(a)} vs {len(b)}")
