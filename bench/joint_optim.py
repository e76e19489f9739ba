"""One Adam step for all members of a joint step (bench.joint): each member keeps its own optimizer,
state, learning rate and schedule; their updates run as one foreach call per set of hyperparameters.

:func:`bench.train.fit_steps` steps each member's own optimizer in its turn. A torch step pre-hook
(global, registered only while a joint group trains) lets the first member optimizer that steps in a
round update every active member's optimizer at once, with torch's own code (``Optimizer._init_group``,
which also creates the state as ``step()`` would, and the functional ``torch.optim.adam.adam`` with
``foreach=True``); each updated optimizer's gradients are then set to None, so that its own ``step()``
in its turn finds nothing left to update (Adam skips parameters without a gradient). Nothing else
reads a member's parameters between the round's start and its turn (its evaluation comes after).

Only plain Adam / AdamW (no amsgrad, maximize, capturable, differentiable or fused kernels) of members
without gradient clipping, gradient accumulation or a loss scaler join; every other optimizer steps on
its own as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch.optim.adam import adam
from torch.optim.optimizer import register_optimizer_step_pre_hook

FUSABLE_TYPES = (torch.optim.Adam, torch.optim.AdamW)


def fusable(optimizer: torch.optim.Optimizer) -> bool:
    """Whether this optimizer's step is the plain Adam/AdamW update that the foreach call reproduces."""
    return type(optimizer) in FUSABLE_TYPES and all(
        not g["amsgrad"] and not g["maximize"] and not g["capturable"] and not g["differentiable"]
        and not g["fused"] and isinstance(g["lr"], float) for g in optimizer.param_groups)


class FusedAdam:
    """``with FusedAdam(param_sets):`` then ``with fused.round(indices):`` around the members' turns.

    ``param_sets[i]``: member i's trained parameters (empty: member i steps on its own).
    """

    def __init__(self, param_sets: Sequence[Iterable[torch.Tensor]]) -> None:
        self.owner = {id(p): i for i, params in enumerate(param_sets) for p in params}
        self.known: dict[int, tuple[int, torch.optim.Optimizer]] = {}  # id(optimizer) -> (member, optimizer)
        self.active: set[int] | None = None
        self.done: set[int] = set()
        self.fused_steps = 0  # optimizer steps taken by the foreach path (the tests check it is used)
        self.largest = 0  # the most optimizers updated by one call
        self._handle = None

    def __enter__(self) -> FusedAdam:
        self._handle = register_optimizer_step_pre_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    @contextlib.contextmanager
    def round(self, members: Iterable[int]) -> Iterator[None]:
        """One joint step's optimizer turns: ``members`` (indices) each step exactly once in it."""
        self.active, self.done = set(members), set()
        try:
            yield
        finally:
            self.active = None

    def _member_of(self, optimizer: torch.optim.Optimizer) -> int | None:
        owners = {self.owner.get(id(p)) for g in optimizer.param_groups for p in g["params"]}
        return owners.pop() if len(owners) == 1 and None not in owners and fusable(optimizer) else None

    def _hook(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        if self.active is None or id(optimizer) in self.done:
            return
        if id(optimizer) not in self.known:
            member = self._member_of(optimizer)
            if member is None:
                return
            self.known[id(optimizer)] = (member, optimizer)
        ready = [opt for member, opt in self.known.values() if member in self.active and id(opt) not in self.done]
        self.step(ready)

    def step(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Update ``optimizers`` as each one's ``step()`` would; then clear their gradients."""
        with torch.no_grad():
            self._update(optimizers)
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
            self.done.add(id(optimizer))
        self.fused_steps += len(optimizers)
        self.largest = max(self.largest, len(optimizers))

    @staticmethod
    def _update(optimizers: list[torch.optim.Optimizer]) -> None:
        calls: dict[tuple, list[list[torch.Tensor]]] = {}  # hyperparameters -> adam()'s six lists
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                lists: list[list[torch.Tensor]] = [[], [], [], [], [], []]
                if optimizer._init_group(group, *lists):  # complex parameters: not written here
                    raise TypeError("FusedAdam: complex parameters are not supported")
                key = (group["lr"], *group["betas"], group["weight_decay"], group["eps"],
                       group["decoupled_weight_decay"])
                merged = calls.setdefault(key, [[], [], [], [], [], []])
                for into, part in zip(merged, lists, strict=True):
                    into.extend(part)
        for (lr, beta1, beta2, weight_decay, eps, decoupled), lists in calls.items():
            if lists[0]:
                adam(*lists, foreach=True, amsgrad=False, has_complex=False, beta1=beta1, beta2=beta2, lr=lr,
                     weight_decay=weight_decay, eps=eps, maximize=False, decoupled_weight_decay=decoupled)


__all__ = ["FusedAdam", "fusable"]
