"""PET's second stage as functions (timoschick/pet ``pet/modeling.py``, ``pet/utils.py``).

- :func:`ensemble_logits`: the pattern models' logits on the unlabeled set merged as PET's
  ``merge_logits_lists``: ``wmean`` (default) weighs each model by its accuracy on the training
  set *before* training, ``mean`` weighs them equally.
- :func:`soft_targets`: the distillation targets, ``softmax(logits / T)`` (T = 2).
- :func:`distillation_loss`: PET's KL divergence ``sum KL(q || softmax(s / T)) * T^2 / n``.

Runs use them through :mod:`bench.superglue.pet_stage` (the records' unlabeled logits),
:mod:`bench.superglue.distill` (PET's classifier) and :mod:`bench.superglue.ipet` (iPET's labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from bench.errors import ConfigError


def ensemble_logits(logits: Sequence[torch.Tensor], train_accuracy: Sequence[float],
                    reduction: str = "wmean") -> torch.Tensor:
    """Per-model (n, labels) logits -> their (weighted) mean, as ``np.average(..., weights=acc)``."""
    if not logits:
        raise ConfigError("PET's ensemble needs at least one pattern model's logits")
    stacked = torch.stack([torch.as_tensor(x, dtype=torch.float64) for x in logits])
    if reduction == "mean":
        return stacked.mean(0)
    if reduction != "wmean":
        raise ConfigError(f"PET reduction {reduction!r}: use wmean (weights = train accuracy before training) or mean")
    weights = torch.as_tensor(list(train_accuracy), dtype=torch.float64)
    if weights.numel() != stacked.shape[0] or float(weights.sum()) <= 0:
        raise ConfigError("wmean needs one positive-sum train accuracy per pattern model (all zero: use mean)")
    return (stacked * weights[:, None, None]).sum(0) / weights.sum()


def soft_targets(logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    return F.softmax(logits / temperature, dim=-1)


def distillation_loss(student: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    log_p = F.log_softmax(student / temperature, dim=1)
    q = soft_targets(teacher_logits.to(student.dtype), temperature)
    return F.kl_div(log_p, q, reduction="sum") * temperature**2 / student.shape[0]
