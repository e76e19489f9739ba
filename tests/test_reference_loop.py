"""``fit`` with THUDM/P-tuning's LAMA loop (drop_last, eval_before_epoch) against cli.py's schedule restated by hand."""

from __future__ import annotations

import pytest
import torch
from test_train_loop import ToyMethod  # the same one-weight method

from bench.train import fit


class ScriptedTask:
    """Seven training examples (batch 3: two full batches and one of 1); dev values follow a script."""

    def __init__(self, values, method):
        self.values, self.method, self.seen = list(values), method, []
        self.drop_flags = []

    def train_batches(self, batch_size, generator, drop_last=False):
        self.drop_flags.append(drop_last)
        sizes = [3, 3] if drop_last else [3, 3, 1]
        return [torch.ones(n, 1) for n in sizes]

    def loss(self, scores, batch):
        return ((scores - 1.0) ** 2).mean()

    def evaluate(self, split, scorer):
        value = self.values[len(self.seen)]
        self.seen.append(self.method.weight.weight.item())
        return {"value": value}, value


def reference_schedule(values, max_epochs, patience):
    """cli.py L175-221 restated: (evaluated epoch_idx, best epoch_idx or None, epochs trained)."""
    best_dev, early_stop, best, evaluated = 0, 0, None, []
    for epoch_idx in range(max_epochs):
        dev = values[epoch_idx]
        evaluated.append(epoch_idx)
        if epoch_idx > 0 and dev >= best_dev:  # L189 (only_evaluate is False)
            best, early_stop, best_dev = epoch_idx, 0, dev
        else:
            early_stop += 1
            if early_stop >= patience:  # L196: stop before this epoch's training
                return evaluated, best, epoch_idx
        # L204-218: one epoch of training (drop_last batches), then the next loop turn
    return evaluated, best, max_epochs  # L219: no evaluation after the last epoch


CFG = {"lr": 0.1, "optimizer": "adam", "weight_decay": 0.0, "schedule": "exponential", "gamma": 0.98,
       "batch_size": 3, "grad_clip": None, "drop_last": True, "eval_before_epoch": True, "prefer_later_on_tie": True}


def run(values, max_epochs, patience):
    method = ToyMethod()
    task = ScriptedTask(values, method)
    result = fit(method, task, {**CFG, "max_epochs": max_epochs, "early_stopping_patience": patience}, "dev")
    return method, task, result


SCRIPTS = [
    ([0.9, 0.1, 0.3, 0.3, 0.2, 0.2, 0.5, 0.5], 10, 2),  # the untrained start scores best but is never selected
    ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 5, 20),  # all ties: the latest evaluated epoch wins (>=)
    ([0.1, 0.2, 0.3, 0.4, 0.5], 4, 20),  # runs out of epochs: the state after the last epoch is never scored
    ([0.5, 0.4, 0.3, 0.2, 0.1, 0.6, 0.7], 7, 3),  # patience counts the epoch-0 evaluation
]


@pytest.mark.parametrize(("values", "max_epochs", "patience"), SCRIPTS)
def test_schedule_matches_the_reference(values, max_epochs, patience):
    method, task, result = run(values, max_epochs, patience)
    evaluated, best, trained = reference_schedule(values, max_epochs, patience)
    assert [h["epoch"] for h in result.history] == evaluated
    assert result.best_epoch == best and result.epochs == trained
    assert [h["step"] for h in result.history] == [2 * e for e in evaluated]  # two full batches per epoch
    assert result.steps == 2 * trained and task.drop_flags == [True] * trained
    assert method.weight.weight.item() == task.seen[best]  # the state scored at the selected evaluation


def test_schedule_written_out_by_hand():
    _, task, result = run(*SCRIPTS[0])
    # before epoch 0: 0.9 (not selectable, patience 1/2); 1: 0.1 best; 2: 0.3 best; 3: 0.3 best (tie, later);
    # 4: 0.2 (1/2); 5: 0.2 (2/2) -> stop before training epoch 5, after 5 trained epochs
    assert [(h["epoch"], h["value"]) for h in result.history] == [(0, 0.9), (1, 0.1), (2, 0.3), (3, 0.3), (4, 0.2),
                                                                   (5, 0.2)]
    assert (result.best_epoch, result.best_value, result.epochs, result.steps) == (3, 0.3, 5, 10)
    _, _, last = run(*SCRIPTS[2])
    assert [h["epoch"] for h in last.history] == [0, 1, 2, 3] and last.epochs == 4 and last.best_epoch == 3


def test_paper_loop_is_unchanged_by_the_new_keys():
    method = ToyMethod()
    task = ScriptedTask([0.1, 0.5, 0.3, 0.2], method)
    cfg = {**CFG, "drop_last": False, "eval_before_epoch": False, "max_epochs": 10, "early_stopping_patience": 2}
    result = fit(method, task, cfg, "dev")
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3] and result.best_epoch == 1
    assert result.steps == 3 * 4 and task.drop_flags == [False] * 4  # the partial batch trains


def test_a_run_with_nothing_selectable_scores_its_final_state(caplog):
    # patience 1: the epoch-0 evaluation alone stops the reference (which then fails on save(None))
    _, task, result = run([0.4, 0.6], 5, 1)
    assert [h["epoch"] for h in result.history] == [0, 0] and result.best_value == 0.6 and result.steps == 0
    assert "no evaluation after training began" in caplog.text


def test_eval_every_is_refused_with_eval_before_epoch():
    with pytest.raises(ValueError, match="eval_before_epoch"):
        run_cfg = {**CFG, "eval_every": 2, "max_epochs": 2}
        fit(ToyMethod(), ScriptedTask([0.1] * 4, ToyMethod()), run_cfg, "dev")
