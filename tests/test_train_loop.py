"""The shared training loop on a toy method and task whose numbers can be followed by hand."""

import pytest
import torch
from torch import nn

import bench.train
from bench.methods.base import Method
from bench.train import fit


class ToyMethod(Method):
    name = "toy"
    trains = True

    def __init__(self):
        self.weight = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(self.weight.weight)
        self.backbone = type("B", (), {"model": nn.Linear(1, 1)})()

    def own_modules(self):
        return {"weight": self.weight}

    def scorer(self):
        return lambda batch: self.weight(batch)


class ToyTask:
    """Loss (w - 1)^2 per step; the selection value follows a scripted sequence per evaluation."""

    def __init__(self, values, steps_per_epoch=2):
        self.values, self.calls, self.steps_per_epoch = list(values), 0, steps_per_epoch

    def train_batches(self, batch_size, generator):
        return [torch.ones(1, 1)] * self.steps_per_epoch

    def loss(self, scores, batch):
        return ((scores - 1.0) ** 2).mean()

    def evaluate(self, split, scorer):
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return {"value": value}, value


CFG = {"lr": 0.1, "optimizer": "adam", "weight_decay": 0.0, "schedule": "constant", "batch_size": 1,
       "grad_clip": None}


def test_best_epoch_is_restored_and_patience_stops():
    method, task = ToyMethod(), ToyTask([0.1, 0.5, 0.3, 0.2, 0.9])
    weights = []
    original = task.evaluate

    def spy(split, scorer):
        weights.append(method.weight.weight.item())
        return original(split, scorer)

    task.evaluate = spy
    result = fit(method, task, {**CFG, "max_epochs": 10, "early_stopping_patience": 2}, "dev")
    # evaluations after epochs 0..3 give 0.1, 0.5, 0.3, 0.2: two bad evaluations after the best -> stop
    assert result.epochs == 4 and result.best_epoch == 1 and result.best_value == 0.5
    assert method.weight.weight.item() == weights[1]  # the state at the best evaluation
    assert result.steps == 8 and len(result.losses) == 4 and result.losses[0] > result.losses[-1]


def test_step_limit_between_evaluations_still_scores_the_final_state():
    method, task = ToyMethod(), ToyTask([0.7])
    result = fit(method, task, {**CFG, "max_epochs": 10, "max_steps": 1}, "dev")
    assert result.steps == 1 and len(result.history) == 1 and result.best_step == 1
    assert method.weight.weight.item() != 0.0  # the trained state is kept, not the initial one


def test_ties_keep_earlier_state_unless_asked_for_the_later():
    for prefer_later, expected_epoch in ((False, 0), (True, 1)):
        method, task = ToyMethod(), ToyTask([0.4, 0.4, 0.1])
        result = fit(method, task, {**CFG, "max_epochs": 3, "prefer_later_on_tie": prefer_later}, "dev")
        assert result.best_epoch == expected_epoch


def test_exponential_schedule_decays_once_per_epoch_and_backbone_is_untouched():
    method, task = ToyMethod(), ToyTask([0.1] * 5)
    before = [p.detach().clone() for p in method.backbone.model.parameters()]
    lrs = []
    original = task.train_batches

    def spy(batch_size, generator):
        lrs.append(optimizer_lr())
        return original(batch_size, generator)

    import bench.train as train_mod

    created = {}
    real_build = train_mod.build_optimizer

    def build(m, cfg):
        created["opt"] = real_build(m, cfg)
        return created["opt"]

    def optimizer_lr():
        return created["opt"].param_groups[0]["lr"]

    train_mod.build_optimizer = build
    try:
        task.train_batches = spy
        fit(method, task, {**CFG, "schedule": "exponential", "gamma": 0.5, "max_epochs": 3}, "dev")
    finally:
        train_mod.build_optimizer = real_build
    assert lrs == [0.1, 0.05, 0.025]
    assert all(torch.equal(a, b) for a, b in zip(before, method.backbone.model.parameters(), strict=True))


def test_a_non_finite_loss_names_its_step_and_the_epoch_mean_is_exact(monkeypatch):
    """Losses are read back once per epoch (no device sync per step); a NaN still fails the run, naming
    the first bad step. Epoch 0 loss by hand: w starts at 0, Adam's first steps move w by lr=0.1 each,
    so the losses are (0-1)^2=1 and (0.1-1)^2=0.81: mean 0.905."""
    method, task = ToyMethod(), ToyTask([0.1] * 5, steps_per_epoch=2)
    result = fit(method, task, {**CFG, "max_epochs": 1}, "dev")
    assert abs(result.losses[0] - 0.905) < 1e-6

    class NanAtThird(ToyTask):
        def loss(self, scores, batch):
            self.steps = getattr(self, "steps", 0) + 1
            value = super().loss(scores, batch)
            return value * float("nan") if self.steps == 3 else value

    with pytest.raises(FloatingPointError, match="training loss is nan at step 2"):
        fit(ToyMethod(), NanAtThird([0.1] * 5, steps_per_epoch=4), {**CFG, "max_epochs": 1}, "dev")
    monkeypatch.setattr(bench.train, "CHECK_EVERY", 2)  # read back every 2 steps: caught at step 4 of 10
    task = NanAtThird([0.1] * 5, steps_per_epoch=10)
    with pytest.raises(FloatingPointError, match="training loss is nan at step 2"):
        fit(ToyMethod(), task, {**CFG, "max_epochs": 1}, "dev")
    assert task.steps == 4
