"""Adafactor as T5X runs it for Prompt Tuning (``trainer.adafactor: t5x``; Lester et al. 2021).

google-research/prompt-tuning trains with ``t5x.adafactor.Adafactor`` (``configs/models/t5_1_1_prompt.gin``:
decay_rate 0.8, step_offset 0, multiply_by_parameter_scale False, weight_decay_rate 1e-5; T5X defaults:
no momentum, update clipping 1.0, epsilon1 1e-30, min_dim_size_to_factor 128) at a constant lr (0.3).
transformers' ``Adafactor`` (relative_step, scale_parameter and warmup_init off) computes the same update
except in two rules, which this subclass changes (transformers' class does not expose them):

- factoring: T5X factors a parameter's second moment only when its two largest dimensions are both
  >= ``min_dim_size_to_factor`` (its heuristic for rank <= 2 parameters, which the prompt rules fall back
  to); transformers factors every parameter of rank >= 2. A 100 x d prompt is factored there, not in T5X;
- weight decay: T5X multiplies the parameter by ``1 - weight_decay_rate`` (not scaled by the learning
  rate: ``weight_decay_rate_lr_exponent`` is None); transformers subtracts ``lr * weight_decay * p``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers.optimization import Adafactor

MIN_DIM_SIZE_TO_FACTOR = 128  # t5x.adafactor.Adafactor default


class T5XAdafactor(Adafactor):
    """transformers' Adafactor with T5X's factoring rule and unscaled (decoupled) weight decay."""

    def __init__(self, params: Iterable[dict], lr: float, weight_decay: float = 0.0, decay_rate: float = 0.8,
                 clip_threshold: float = 1.0, min_dim_size_to_factor: int = MIN_DIM_SIZE_TO_FACTOR,
                 scale_parameter: bool = False) -> None:
        groups = [dict(g) for g in params]
        for group in groups:  # each group's decay is applied here, never by the parent (which scales it by lr)
            group["t5x_weight_decay"] = float(group.pop("weight_decay", weight_decay))
        self.min_dim_size_to_factor = int(min_dim_size_to_factor)
        super().__init__(groups, lr=lr, eps=(1e-30, 1e-3), clip_threshold=clip_threshold, decay_rate=-decay_rate,
                         beta1=None, weight_decay=0.0, scale_parameter=bool(scale_parameter), relative_step=False,
                         warmup_init=False)  # scale_parameter: T5X's multiply_by_parameter_scale (lr * max(1e-3, rms(p)))

    def _get_options(self, param_group: dict, param_shape: torch.Size) -> tuple[bool, bool]:  # type: ignore[override]
        dims = sorted(param_shape)
        factored = len(dims) >= 2 and dims[-2] >= self.min_dim_size_to_factor
        return factored, param_group["beta1"] is not None

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:  # (1 - rate) * p - lr * update: the update does not read p (no parameter scale)
            rate = group["t5x_weight_decay"]
            if rate:
                for p in group["params"]:
                    if p.grad is not None:
                        p.mul_(1.0 - rate)
        return super().step(closure)
