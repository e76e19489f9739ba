"""Metrics with exact names. LAMA: P@1 per relation, ``macro_over_relations`` and ``pooled``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class FactOutcome:
    """One scored fact: its group (relation), whether top-1 was right, and its provenance flag."""

    group: str
    correct: bool
    reconstructed: bool = False


def _summary(per_group: Mapping[str, dict]) -> dict:
    groups = [g for g in per_group.values() if g["n"] > 0]
    n = sum(g["n"] for g in groups)
    hits = sum(g["hits"] for g in groups)
    return {
        "macro_over_relations": (sum(g["p_at_1"] for g in groups) / len(groups)) if groups else None,
        "pooled": hits / n if n else None,
        "n_facts": n,
        "n_hits": hits,
        "n_relations": len(groups),
    }


def p_at_1(outcomes: Iterable[FactOutcome]) -> dict:
    """P@1 per group plus the two averages, over all facts and over non-reconstructed facts only.

    ``macro_over_relations`` is the mean of per-relation P@1 (what LAMA and P-Tuning report);
    ``pooled`` is hits / facts over all relations. Both are fractions in [0, 1].
    """
    per_group: dict[str, dict] = {}
    real: dict[str, dict] = {}
    for outcome in outcomes:
        for table, include in ((per_group, True), (real, not outcome.reconstructed)):
            if not include:
                continue
            entry = table.setdefault(outcome.group, {"n": 0, "hits": 0, "n_reconstructed": 0})
            entry["n"] += 1
            entry["hits"] += int(outcome.correct)
            entry["n_reconstructed"] += int(outcome.reconstructed)
    for table in (per_group, real):
        for entry in table.values():
            entry["p_at_1"] = entry["hits"] / entry["n"]
    return {
        "overall": _summary(per_group),
        "groups": dict(sorted(per_group.items())),
        "subsets": {"real_only": _summary(real)},
    }
