"""transformers' own ``AdamW`` (``transformers.optimization.AdamW``, as 3.0.2 - 4.x shipped it), the optimizer
PET, PT-Fewshot and the other released recipes of that time ran (``trainer.optimizer: adamw_hf``).

Written here because transformers deprecated and then removed that class, and ``torch.optim.AdamW`` computes
another update: torch adds ``eps`` to ``sqrt(v / (1 - beta2^t))`` and decays the weights *before* the Adam
step; transformers adds ``eps`` to ``sqrt(v)`` (then scales the step by ``sqrt(1 - beta2^t) / (1 - beta1^t)``)
and decays the *updated* weights by ``lr * weight_decay`` after it. Checked by execution against transformers
3.0.2's class in PET's environment (``tests/parity/test_fewglue_optimizer.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch


class LegacyAdamW(torch.optim.Optimizer):
    """transformers' ``AdamW(params, lr, betas, eps, weight_decay, correct_bias)`` update, step for step."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, correct_bias: bool = True) -> None:
        if lr < 0.0 or eps < 0.0 or not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"LegacyAdamW: invalid lr {lr}, betas {betas} or eps {eps}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "correct_bias": correct_bias})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LegacyAdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    step_size = step_size * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss
