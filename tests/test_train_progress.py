"""Training shows one progress bar with a total (hence an ETA) and the epoch and selection score (issue 27, Found 8)."""

import pytest
import torch
from torch import nn

import bench.train
from bench.methods.base import Method
from bench.train import fit, planned_steps


class Bar:
    """Stands in for tqdm: records the total it was given, the steps counted and the postfixes."""

    made: list["Bar"] = []

    def __init__(self, *args, total=None, **kwargs):
        self.total, self.n, self.postfix, self.closed = total, 0, [], False
        Bar.made.append(self)

    def update(self, n=1):
        self.n += n

    def set_postfix_str(self, text, refresh=True):
        self.postfix.append(text)

    def close(self):
        self.closed = True


class Toy(Method):
    name, trains = "toy", True

    def __init__(self):
        self.weight = nn.Linear(1, 1, bias=False)
        self.backbone = type("B", (), {"model": nn.Linear(1, 1)})()

    def own_modules(self):
        return {"weight": self.weight}

    def scorer(self):
        return lambda batch: self.weight(batch)


class Task:
    def __init__(self, values, n_batches=2, sized=True):
        self.values, self.n_batches, self.sized, self.calls = list(values), n_batches, sized, 0

    def train_batches(self, batch_size, generator):
        batches = [torch.ones(1, 1)] * self.n_batches
        return batches if self.sized else iter(batches)

    def loss(self, scores, batch):
        return ((scores - 1.0) ** 2).mean()

    def evaluate(self, split, scorer):
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return {"value": value}, value


CFG = {"lr": 0.1, "optimizer": "adam", "weight_decay": 0.0, "schedule": "constant", "batch_size": 1}


@pytest.fixture(autouse=True)
def bars(monkeypatch):
    Bar.made = []
    monkeypatch.setattr(bench.train, "tqdm", Bar)
    return Bar.made


def test_planned_steps_is_the_smaller_of_the_step_limit_and_the_epochs():
    assert planned_steps(3, None, 5) == 15
    assert planned_steps(3, 10, 5) == 10
    assert planned_steps(3, 20, 5) == 15
    assert planned_steps(3, 7, None) == 7
    assert planned_steps(3, None, None) is None


def test_one_bar_for_the_whole_training_with_its_total(bars):
    fit(Toy(), Task([0.1, 0.2, 0.3]), {**CFG, "max_epochs": 3}, "dev", steps_per_epoch=2)
    (bar,) = bars
    assert (bar.total, bar.n, bar.closed) == (6, 6, True)
    assert "epoch 2, dev 0.3000" in bar.postfix


def test_step_limit_sets_the_total_and_the_epoch_length_is_read_from_sized_batches(bars):
    fit(Toy(), Task([0.5]), {**CFG, "max_epochs": 10, "max_steps": 3}, "dev")
    assert (bars[0].total, bars[0].n) == (3, 3)
    fit(Toy(), Task([0.5], n_batches=4), {**CFG, "max_epochs": 2}, "dev")  # no steps_per_epoch given
    assert (bars[1].total, bars[1].n) == (8, 8)


def test_early_stopping_closes_the_bar_before_its_total(bars):
    fit(Toy(), Task([0.9, 0.1, 0.1]), {**CFG, "max_epochs": 10, "early_stopping_patience": 2}, "dev",
        steps_per_epoch=2)
    assert (bars[0].total, bars[0].n, bars[0].closed) == (20, 6, True)
