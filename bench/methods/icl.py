"""``icl``: in-context learning (GPT-3 style), k labeled demonstrations in the input, no training.

For each query, ``k`` demonstrations are drawn from the training split with a generator seeded by
the run seed and the query's id (so a run is reproducible and queries see different draws, as in
GPT-3). Each demonstration is the task template with its gold answer (first label word, or the
gold choice) written into the target slot; demonstrations are joined by ``separator``.

Placement (``placement: auto``): left-to-right (``clm``) and seq2seq models read the
demonstrations *before* the query (GPT-3); masked LMs read them *after* the query, the query's
mask staying the only target (LM-BFF's demonstrations, without its similarity-based sampling).
When the input is over ``max_length``, demonstrations are dropped one at a time; the query is
truncated only once none is left. The record's ``extra.demonstrations`` lists, per scored
example, the demonstrations it actually read (a warning is logged when fewer than ``k``). The template renderer collapses whitespace between pieces, so
the separator before the query renders as one space (inside the demonstrations it is kept).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence

from bench.errors import ConfigError
from bench.methods.base import Method
from bench.prompts.template import Template, parse_template

log = logging.getLogger(__name__)
PLACEMENTS = ("auto", "before", "after")
DEMO_FIELD = "_demonstrations"


class InContext(Method):
    """Frozen backbone; demonstrations are part of every input."""

    name = "icl"
    trains = False
    output_space = "vocab"
    uses_demonstrations = True

    def __init__(self, k: int = 4, separator: str = "\n\n", placement: str = "auto") -> None:
        if int(k) < 0:
            raise ConfigError(f"icl: k must be >= 0, got {k}")
        if placement not in PLACEMENTS:
            raise ConfigError(f"icl: placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        self.k, self.separator, self.placement = int(k), str(separator), placement

    def setup(self, backbone) -> None:
        super().setup(backbone)
        backbone.model.eval()
        backbone.model.requires_grad_(False)

    def side(self, family: str) -> str:
        if self.placement != "auto":
            return self.placement
        return "after" if family == "mlm" else "before"

    def sample(self, pool: Sequence, query_uid: str, seed: int) -> list:
        """``k`` demonstrations (never the query itself), reproducible per (seed, query)."""
        candidates = [ex for ex in pool if getattr(ex, "uid", None) != query_uid]
        if self.k and not candidates:
            raise ConfigError("icl: the training split has no labeled examples to demonstrate")
        rng = random.Random(f"{seed}:{query_uid}")
        return rng.sample(candidates, min(self.k, len(candidates)))

    def with_demonstrations(self, template: Template, fields: Mapping[str, str], demos: Sequence[str],
                            family: str) -> tuple[Template, dict[str, str]]:
        """The template extended by one field holding the demonstrations, and the fields to fill it."""
        if not demos:
            return template, dict(fields)
        text = self.separator.join(demos)
        if self.side(family) == "before":
            composite = f"{{{DEMO_FIELD}}}{self.separator}{template.text}"
        else:
            composite = f"{template.text}{self.separator}{{{DEMO_FIELD}}}"
        return parse_template(composite, name=template.name), {**fields, DEMO_FIELD: text}


def demonstration_text(template: Template, fields: Mapping[str, str], answer: str) -> str:
    """The template filled with ``fields``, ``answer`` in the target slot, no pseudo tokens."""
    if template.num_soft:
        raise ConfigError(f"icl: template {template.text!r} has pseudo tokens [P]; demonstrations need a discrete one")
    return template.fill(fields, target=answer).strip()


def demonstration_summary(k: int, max_length: int, used: Mapping[str, Sequence[str]],
                          split_uids: Mapping[str, Sequence[str]]) -> dict:
    """Per split: the demonstrations each example read (train uids, in order) and counts; warns when
    some read fewer than ``k`` (dropped to fit ``max_length``, or a train split smaller than ``k``)."""
    out: dict = {"k": int(k), "max_length": int(max_length), "splits": {}}
    for split, uids in split_uids.items():
        per_example = {uid: list(used.get(uid, [])) for uid in uids}
        counts = [len(v) for v in per_example.values()]
        fewer = sum(c < k for c in counts)
        mean = sum(counts) / len(counts) if counts else 0.0
        out["splits"][split] = {"n_examples": len(counts), "n_fewer_than_k": fewer, "min_used": min(counts, default=0),
                                "max_used": max(counts, default=0), "mean_used": round(mean, 4),
                                "per_example": per_example}
        if fewer:
            log.warning("icl %s: %d of %d examples read fewer than k=%d demonstrations (min %d, mean %.2f): "
                        "dropped to fit max_length=%d, or the train split is smaller than k",
                        split, fewer, len(counts), k, min(counts), mean, max_length)
    return out
