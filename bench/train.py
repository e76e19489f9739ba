"""One training loop for every method: parameter groups, schedules, early stopping, best state.

The loop knows nothing about tasks or methods beyond two small contracts:
- the method gives ``param_groups(trainer_cfg)`` (per-group learning rates),
  ``trainable_parameters()`` and ``scorer()`` (batch -> scores at the target slots);
- the task gives ``train_batches(batch_size, generator)`` (batches with their gold labels),
  ``loss(scores, batch)`` and ``evaluate(split, scorer) -> (metrics, selection_value)``.
The best state (by the selection split) is kept in memory and restored at the end, so the
report split is always scored with the selected checkpoint, never chosen on itself.

THUDM/P-tuning's LAMA loop (``task.protocol=reference``; docs/lama-protocol.md) is two keys:
``drop_last`` (the task leaves out the last partial batch: ``train_batches(..., drop_last=True)``)
and ``eval_before_epoch``: the selection split is scored before each epoch's training (history
``epoch`` = epochs trained so far); the score of the untrained start (before epoch 0) counts
toward patience but is never selected, and no evaluation follows the last epoch. Where such a run
ends without a selectable evaluation (the reference fails there), the final state is scored.

Gradient accumulation (``trainer.grad_accumulation_steps`` N, default 1): ``batch_size`` is the
micro-batch; each micro-batch's loss (the task's own, e.g. PET's COPA hinge on that micro-batch) is
divided by N and backpropagated, and the optimizer and schedule step once every N micro-batches, as
timoschick/pet's ``wrapper.train``: ``max_steps``, ``eval_every``, ``warmup_steps`` and the steps of the
result count optimizer steps; the micro-batch count runs on across epochs (an epoch's last micro-batches
join the next epoch's first ones); micro-batches left after the last step of the run step nothing.

Precision (:mod:`bench.precision`, from the backbone unless passed): trained parameters must be
float32 master weights; forward passes (training and evaluation) run under autocast in the
compute dtype; the backward pass and the optimizer step run outside it; fp16 scales the loss.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from bench import precision as precision_policy
from bench.errors import ConfigError
from bench.optim_groups import decay_rules
from bench.precision import Precision
from bench.selection import Selector

log = logging.getLogger(__name__)
OPTIMIZERS = ("adamw", "adamw_hf", "adam", "adafactor")
WARMUP_RULES = ("suite", "hf")  # step s of a warmup of w: suite (s + 1) / w; hf s / w (the first step at lr 0)
SCHEDULES = ("linear", "exponential", "constant")


class TrainableTask(Protocol):
    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterable[Any]: ...

    def loss(self, scores: torch.Tensor, batch: Any) -> torch.Tensor: ...

    def evaluate(self, split: str, scorer: Callable) -> tuple[dict, float]: ...


@dataclass
class FitResult:
    best_value: float | None
    best_step: int
    best_epoch: int
    steps: int
    epochs: int
    history: list[dict] = field(default_factory=list)  # one entry per evaluation
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    selection_metrics: dict | None = None
    selection_rule: str = ""  # the rule in words (bench.selection.Selector.describe)


def build_optimizer(method, trainer_cfg: Mapping) -> torch.optim.Optimizer:
    groups = decay_rules(method, method.param_groups(trainer_cfg), trainer_cfg)
    if not any(p.requires_grad for g in groups for p in g["params"]):
        raise ValueError(f"method {method.name} declares no trainable parameters; it cannot be trained")
    name = str(trainer_cfg.get("optimizer", "adamw")).lower()
    if name not in OPTIMIZERS:
        raise ConfigError(f"trainer.optimizer={name!r} is not one of {', '.join(OPTIMIZERS)}")
    if name == "adafactor":  # Lester et al.'s prompt tuning: constant lr (0.3), no relative step / parameter scale
        from transformers.optimization import Adafactor

        variant = str(trainer_cfg.get("adafactor", "hf"))  # t5x: T5X's factoring and weight decay (bench.adafactor)
        if variant not in ("hf", "t5x"):
            raise ConfigError(f"trainer.adafactor={variant!r} is not one of hf, t5x")
        if variant == "t5x":
            from bench.adafactor import T5XAdafactor

            return T5XAdafactor(groups, lr=float(trainer_cfg["lr"]), weight_decay=float(trainer_cfg.get("weight_decay", 0.0)),
                                scale_parameter=bool(trainer_cfg.get("adafactor_parameter_scale", False)))

        return Adafactor(groups, lr=float(trainer_cfg["lr"]), relative_step=False, scale_parameter=False,
                         warmup_init=False, weight_decay=float(trainer_cfg.get("weight_decay", 0.0)))
    if name == "adamw_hf":  # transformers' own AdamW, as PET / PT-Fewshot ran it (bench.legacy_adamw)
        from bench.legacy_adamw import LegacyAdamW

        return LegacyAdamW(groups, lr=float(trainer_cfg["lr"]), eps=1e-8,  # --adam_epsilon 1e-8 (both references)
                           weight_decay=float(trainer_cfg.get("weight_decay", 0.0)))
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    return cls(groups, lr=float(trainer_cfg["lr"]), weight_decay=float(trainer_cfg.get("weight_decay", 0.0)))


def build_schedule(optimizer, trainer_cfg: Mapping, total_steps: int):
    """Returns (scheduler, step_per) with step_per in {"epoch", "step"}."""
    kind = trainer_cfg.get("schedule", "constant")
    if kind == "exponential":  # P-Tuning LAMA: decay once per epoch
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(trainer_cfg.get("gamma", 0.98))), "epoch"
    warmup = int(trainer_cfg.get("warmup_steps", 0) or 0)
    rule = str(trainer_cfg.get("warmup_rule", "suite"))
    if rule not in WARMUP_RULES:
        raise ConfigError(f"trainer.warmup_rule={rule!r} is not one of {', '.join(WARMUP_RULES)}")
    first = 0 if rule == "hf" else 1  # transformers' get_linear_schedule_with_warmup: s / w
    if kind == "linear":
        def factor(step: int) -> float:
            if step < warmup:
                return (step + first) / max(1, warmup)
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    elif kind == "constant":
        def factor(step: int) -> float:
            return min(1.0, (step + first) / max(1, warmup)) if warmup else 1.0
    else:
        raise ConfigError(f"trainer.schedule={kind!r} is not one of {', '.join(SCHEDULES)}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "step"


def trainable_snapshot(method) -> list[torch.Tensor]:
    return [p.detach().clone() for p in method.trainable_parameters()]


def restore_snapshot(method, snapshot: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for param, saved in zip(method.trainable_parameters(), snapshot, strict=True):
            param.copy_(saved)



CHECK_EVERY = 100  # steps between reads of the losses (one device sync each)


def _check_finite(losses: list[torch.Tensor], first: int, accumulation: int = 1) -> float:
    """The mean of an epoch's (micro-)batch losses; FloatingPointError naming the first step whose loss is not
    finite (``first``: the index of ``losses[0]`` among the run's micro-batches)."""
    if not losses:
        return float("nan")
    values = torch.stack([v.float() for v in losses]).cpu()
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        index = int(bad[0])
        where = f"step {(first + index) // accumulation}"
        if accumulation > 1:
            where += f" (micro-batch {(first + index) % accumulation + 1} of {accumulation})"
        raise FloatingPointError(f"training loss is {float(values[index])} at {where}")
    return float(values.mean())


def accumulation_steps(trainer_cfg: Mapping) -> int:
    """``trainer.grad_accumulation_steps``: micro-batches per optimizer step (1: every batch steps)."""
    value = trainer_cfg.get("grad_accumulation_steps", 1)
    value = 1 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"trainer.grad_accumulation_steps={value!r} must be a whole number >= 1 (micro-batches of "
                          "trainer.batch_size per optimizer step; 1: no accumulation)")
    return value


def planned_steps(max_epochs: int, max_steps: Any, steps_per_epoch: int | None, accumulation: int = 1) -> int | None:
    """The optimizer steps training will take at most (None when the epoch length is unknown).

    ``steps_per_epoch`` counts the (micro-)batches of an epoch; with accumulation N the run takes
    ``epochs x batches // N`` optimizer steps (the micro-batch count runs on across epochs)."""
    bounds = [int(max_steps)] if max_steps else []
    if steps_per_epoch:
        bounds.append(max_epochs * int(steps_per_epoch) // accumulation)
    return min(bounds) if bounds else None


def fit(method, task: TrainableTask, trainer_cfg: Mapping, selection_split: str, seed: int = 0,
        steps_per_epoch: int | None = None, precision: Precision | None = None) -> FitResult:
    """Train ``method`` on ``task``; early-stop on ``selection_split``; restore the best state.

    ``steps_per_epoch``: the batches of an epoch (micro-batches of ``trainer.batch_size`` under accumulation)."""
    precision = precision or precision_policy.of(getattr(method, "backbone", None))
    steps = fit_steps(method, task, trainer_cfg, selection_split, seed, steps_per_epoch, precision)
    try:
        batch = next(steps)
        scorer = method.scorer()
        while True:
            with precision.autocast():
                loss = task.loss(scorer(batch), batch)
            steps.send(loss).backward()
            batch = next(steps)
    except StopIteration as done:
        return done.value


# what fit_steps yields per training step: a batch, then (sent its loss) the tensor to backpropagate
FitSteps = Generator[Any, torch.Tensor | None, FitResult]


def fit_steps(method, task: TrainableTask, trainer_cfg: Mapping, selection_split: str, seed: int = 0,
              steps_per_epoch: int | None = None, precision: Precision | None = None,
              progress: bool = True) -> FitSteps:
    """:func:`fit` with the forward and backward passes left to the caller (bench.joint trains many at once).

    Per (micro-)batch it yields the batch; the caller sends back that batch's loss (graph alive); it zeroes
    the gradients (at the first micro-batch of an optimizer step) and yields the tensor to call
    ``backward()`` on (the loss, divided by the accumulation steps, scaled under fp16); the caller runs the
    backward pass and calls ``next()``, which (after the last micro-batch of a step) steps the optimizer,
    evaluates and yields the next batch. Its return value (``StopIteration.value``) is the :class:`FitResult`.
    """
    precision = precision or precision_policy.of(getattr(method, "backbone", None))
    precision_policy.check_master_weights(method.trainable_parameters())
    scaler = precision.make_scaler()
    generator = torch.Generator().manual_seed(seed)
    optimizer = build_optimizer(method, trainer_cfg)
    max_epochs = int(trainer_cfg.get("max_epochs", 1))
    max_steps = trainer_cfg.get("max_steps")
    batch_size = int(trainer_cfg.get("batch_size", 8))  # the micro-batch under accumulation
    accumulation = accumulation_steps(trainer_cfg)
    # the schedule's length: max_steps, else as PET's t_total (batches per epoch // accumulation x epochs)
    est_total = int(max_steps) if max_steps else max_epochs * max(1, (steps_per_epoch or 1) // accumulation)
    scheduler, step_per = build_schedule(optimizer, trainer_cfg, est_total)
    eval_every = trainer_cfg.get("eval_every")
    patience = trainer_cfg.get("early_stopping_patience")
    clip = trainer_cfg.get("grad_clip")
    drop_last = bool(trainer_cfg.get("drop_last", False))
    before = bool(trainer_cfg.get("eval_before_epoch", False))
    if before and eval_every:
        raise ValueError("trainer.eval_before_epoch scores once per epoch: leave trainer.eval_every null")
    scorer = method.scorer()
    params = method.trainable_parameters()

    result = FitResult(best_value=None, best_step=0, best_epoch=0, steps=0, epochs=0)
    best_state = trainable_snapshot(method)
    selector = Selector.from_config(trainer_cfg)  # bench.selection: max | both (CB/MultiRC) | last (PET)
    result.selection_rule = selector.describe()

    def evaluate(epoch: int, selectable: bool = True) -> bool:
        """Evaluate on the selection split; return True when training should stop early."""
        nonlocal best_state
        method.eval_mode()
        bar.set_postfix_str(f"epoch {epoch}, scoring {selection_split}", refresh=False)
        with precision.autocast():
            metrics, value = task.evaluate(selection_split, scorer)
        shown = f"{value:.4f}" if isinstance(value, int | float) else value
        bar.set_postfix_str(f"epoch {epoch}, {selection_split} {shown}", refresh=False)
        method.train_mode()
        result.history.append({"step": result.steps, "epoch": epoch, "value": value})
        kept = selectable and selector.update(value, metrics)
        if kept:
            result.best_value, result.best_step, result.best_epoch = value, result.steps, epoch
            result.selection_metrics = metrics
            best_state = trainable_snapshot(method)
        elif not selectable:
            selector.bad_evals += 1  # the untrained start counts toward patience, never selected
        result.history[-1]["kept"] = kept
        return selector.exhausted(patience)

    method.train_mode()
    stop = False
    micro = micro_total = 0  # micro-batches since the last optimizer step / in the run (carried across epochs)
    # one bar for the whole training: total = the planned steps (early stopping may end it sooner), ETA from it
    bar = tqdm(total=planned_steps(max_epochs, max_steps, steps_per_epoch, accumulation), desc=f"{method.name} training",
               unit="step", leave=False, mininterval=2.0, dynamic_ncols=True,
               **({} if progress else {"disable": True}))  # unset, TQDM_DISABLE=1 in the environment silences it
    for epoch in range(max_epochs):
        bar.set_postfix_str(f"epoch {epoch}", refresh=False)
        if before and evaluate(epoch, selectable=epoch > 0):
            break
        losses = []
        batches = (task.train_batches(batch_size, generator, drop_last=True) if drop_last
                   else task.train_batches(batch_size, generator))
        if bar.total is None and hasattr(batches, "__len__"):  # the epoch's length is known now
            bar.total = planned_steps(max_epochs, max_steps, len(batches), accumulation)
        for batch in batches:
            loss = yield batch  # the caller's forward pass (under precision.autocast())
            if micro == 0:
                optimizer.zero_grad(set_to_none=True)
            part = loss / accumulation if accumulation > 1 else loss  # PET: loss / gradient_accumulation_steps
            micro += 1
            micro_total += 1
            losses.append(loss.detach())  # read back once per epoch: no device sync per step
            if len(losses) % CHECK_EVERY == 0:  # only the window not read yet
                _check_finite(losses[-CHECK_EVERY:], micro_total - CHECK_EVERY, accumulation)
            if micro < accumulation:
                yield scaler.scale(part) if scaler is not None else part  # backward only: gradients accumulate
                continue
            micro = 0
            if scaler is None:
                yield part  # the caller's backward pass
                if clip:
                    torch.nn.utils.clip_grad_norm_(params, float(clip))
                optimizer.step()
            else:  # fp16: scaled loss; gradients unscaled before clipping; steps with inf/nan are skipped
                yield scaler.scale(part)
                if clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, float(clip))
                scaler.step(optimizer)
                scaler.update()
            if step_per == "step":
                scheduler.step()
            result.steps += 1
            bar.update(1)
            if eval_every and result.steps % int(eval_every) == 0 and evaluate(epoch):
                stop = True
            if stop or (max_steps and result.steps >= int(max_steps)):
                stop = True
                break
        if step_per == "epoch":
            scheduler.step()
        result.losses.append(_check_finite(losses, micro_total - len(losses), accumulation))
        result.epochs = epoch + 1
        if stop:
            break
        if not eval_every and not before and evaluate(epoch):
            break
    bar.close()
    if before:
        if result.best_value is None:  # nothing selectable was scored (the reference fails here)
            log.warning("%s: no evaluation after training began; scoring the final state", method.name)
            evaluate(result.epochs)
    elif (not result.history or result.history[-1]["step"] != result.steps) and (
            trainer_cfg.get("final_eval", True) or result.best_value is None):
        evaluate(result.epochs - 1)  # a step limit hit between evaluations: score the final state too
    restore_snapshot(method, best_state)
    method.eval_mode()
    log.info("%s: best %s=%.4f at epoch %d (step %d) after %d steps", method.name, selection_split,
             result.best_value if result.best_value is not None else float("nan"), result.best_epoch,
             result.best_step, result.steps)
    return result
