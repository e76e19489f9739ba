"""Which evaluated state a training run keeps, and when patience runs out.

``bench.train.fit`` scores the selection split every ``eval_every`` steps (or every epoch) and asks
a :class:`Selector` whether to keep that state. Rules (``trainer.selection_rule``):

- ``max``: keep a state whose selection value beats the best so far; on a tie keep the later one
  when ``prefer_later_on_tie`` (THUDM/P-tuning: ``dev >= best``).
- ``both``: keep a state only when every metric of ``trainer.selection_metrics`` is at least its
  best so far (PT-Fewshot ``pet/wrapper.py`` for CB: accuracy and macro-F1; MultiRC: accuracy and
  F1a); with ``prefer_later_on_tie`` false a state must also beat at least one of them.
- ``last``: keep every state, so the final one is what is reported (PET: no dev set).

Patience (``early_stopping_patience``) counts evaluations without a *strict* improvement when
``tie_resets_patience`` is false (PT-Fewshot: a tie keeps the later state but still counts toward
patience); otherwise any kept state resets it (the LAMA loops).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.errors import ConfigError

RULES = ("max", "both", "last")


def metric_values(metrics: Mapping, names: Sequence[str]) -> tuple[float, ...]:
    """The named metrics of one evaluation (its ``overall`` block when there is one)."""
    flat = metrics.get("overall", metrics) if isinstance(metrics, Mapping) else {}
    missing = [n for n in names if n not in flat]
    if missing:
        raise ConfigError(f"trainer.selection_metrics names {missing}, but the selection split reports "
                          f"{sorted(k for k in flat if not k.startswith('n'))}: use metric names from that list")
    return tuple(float(flat[n]) for n in names)


@dataclass
class Selector:
    rule: str = "max"
    metrics: tuple[str, ...] = ()
    prefer_later: bool = False
    tie_resets_patience: bool = True
    start: float | None = None  # PT-Fewshot starts its best at 0.0 (so a first score of 0 is a tie, not a gain)
    best: tuple[float, ...] | None = None
    bad_evals: int = 0
    decisions: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"trainer.selection_rule={self.rule!r}: use one of {', '.join(RULES)}")
        if self.start is not None and self.best is None:
            self.best = (float(self.start),) * max(1, len(self.metrics) if self.rule == "both" else 1)
        if self.rule == "both" and len(self.metrics) < 2:
            raise ConfigError("trainer.selection_rule=both needs trainer.selection_metrics with two or more "
                              "metric names, e.g. [accuracy, f1_macro] for CB or [accuracy, f1a] for MultiRC")

    @classmethod
    def from_config(cls, trainer_cfg: Mapping) -> Selector:
        return cls(rule=str(trainer_cfg.get("selection_rule") or "max"),
                   metrics=tuple(trainer_cfg.get("selection_metrics") or ()),
                   prefer_later=bool(trainer_cfg.get("prefer_later_on_tie", False)),
                   tie_resets_patience=bool(trainer_cfg.get("tie_resets_patience", True)),
                   start=trainer_cfg.get("selection_start"))

    def update(self, value: float, metrics: Mapping | None = None) -> bool:
        """Record one evaluation; True when this state is to be kept (it becomes the selected one)."""
        current = metric_values(metrics or {}, self.metrics) if self.rule == "both" else (float(value),)
        if self.rule == "last" or self.best is None:
            keep, strict = True, True
        else:
            at_least = all(c >= b for c, b in zip(current, self.best, strict=True))
            if self.rule == "both":
                strict = all(c > b for c, b in zip(current, self.best, strict=True))
                keep = at_least and (self.prefer_later or any(c > b for c, b in zip(current, self.best, strict=True)))
            else:
                strict = current[0] > self.best[0]
                keep = strict or (at_least and self.prefer_later)
        if keep:
            self.best = current
        self.bad_evals = 0 if keep and (strict or self.tie_resets_patience) else self.bad_evals + 1
        self.decisions.append(keep)
        return keep

    def exhausted(self, patience: int | None) -> bool:
        return self.rule != "last" and patience is not None and self.bad_evals >= int(patience)

    def describe(self) -> str:
        """The rule in words, for the record's protocol."""
        if self.rule == "last":
            return "no selection: the last state is kept"
        tie = "ties keep the later state" if self.prefer_later else "ties keep the earlier state"
        if self.rule == "both":
            return f"keep a state when {' and '.join(self.metrics)} are all at least their best; {tie}"
        return f"keep the state with the best selection score; {tie}"
