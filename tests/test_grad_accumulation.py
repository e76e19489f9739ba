"""Gradient accumulation (``trainer.grad_accumulation_steps``, issue 23 item H) in bench.train.

PET (timoschick/pet ``wrapper.train``) trains micro-batches of 2 and steps every 8: each micro-batch's own
loss is divided by 8. For a mean cross-entropy, 4 micro-batches of 2 give one batch of 8's gradient; for COPA's
hinge on the batch's mean token CEs they do not, and the expected parameters come from a plain loop written
here as PET's (zero, 4 x backward(loss / 4), clip, AdamW step, linear schedule), not from bench.train.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.errors import ConfigError
from bench.methods.base import Method
from bench.superglue.losses import batch_hinge_loss
from bench.train import fit, fit_steps, planned_steps

D, V = 5, 7  # toy feature width and "vocabulary"


class LinearMethod(Method):
    """A linear "LM head": token logits = W x; the only trainable weights."""

    name = "linear"
    trains = True

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.head = nn.Linear(D, V, bias=False)
        self.backbone = type("B", (), {"model": nn.Linear(1, 1)})()

    def own_modules(self):
        return {"head": self.head}

    def scorer(self):
        return lambda batch: self.head(batch["x"])


def copa_like(n: int, seed: int = 1) -> list[dict]:
    """Per example two choices of 1 or 2 tokens (feature vector, target id each); choice 0 is correct."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        lengths = (1 + i % 2, 2 - i % 2) if i % 3 else (2, 2)
        out.append({"tokens": [(torch.randn(D, generator=g), int(torch.randint(V, (1,), generator=g)))
                               for _ in range(sum(lengths))], "lengths": lengths})
    return out


def collate(examples: list[dict]) -> dict:
    x = torch.stack([x for ex in examples for x, _ in ex["tokens"]])
    target = torch.tensor([t for ex in examples for _, t in ex["tokens"]])
    owner, correct = [], []  # per token: its (example, choice) unit; per unit: whether it is the gold choice
    for ex in examples:
        for choice, n in enumerate(ex["lengths"]):
            owner += [len(correct)] * n
            correct.append(choice == 0)
    return {"x": x, "target": target, "owner": torch.tensor(owner), "correct": torch.tensor(correct),
            "first": torch.tensor([0] + [sum(sum(e["lengths"]) for e in examples[:i + 1])
                                         for i in range(len(examples) - 1)])}


class ToyTask:
    """Fixed order (no shuffling: the comparison is about batching only); loss ``ce`` (each example's first
    token, mean over the batch) or ``hinge`` (the suite's COPA hinge, bench.superglue.losses.batch_hinge_loss)."""

    def __init__(self, examples: list[dict], loss: str) -> None:
        self.examples, self.kind, self.calls = examples, loss, 0

    def train_batches(self, batch_size, generator):
        return [collate(self.examples[i : i + batch_size]) for i in range(0, len(self.examples), batch_size)]

    def loss(self, scores, batch):
        self.calls += 1
        logp = torch.log_softmax(scores, -1).gather(1, batch["target"][:, None])[:, 0]
        if self.kind == "ce":
            return -logp[batch["first"]].mean()
        n = len(batch["correct"])
        unit = torch.zeros(n).index_add(0, batch["owner"], logp)
        tokens = torch.bincount(batch["owner"], minlength=n).float()
        return batch_hinge_loss(unit, tokens, batch["correct"])

    def evaluate(self, split, scorer):
        return {}, 0.0


TRAINER = {"optimizer": "adamw", "lr": 0.05, "weight_decay": 0.0, "schedule": "linear", "warmup_steps": 0,
           "grad_clip": 1.0, "selection_rule": "last", "early_stopping_patience": None}


def trained(examples, loss: str, batch_size: int, accumulation: int, steps: int) -> tuple[torch.Tensor, int]:
    method, task = LinearMethod(), ToyTask(examples, loss)
    cfg = {**TRAINER, "batch_size": batch_size, "grad_accumulation_steps": accumulation, "max_steps": steps,
           "max_epochs": 100}
    result = fit(method, task, cfg, "dev")
    assert result.steps == steps
    return method.head.weight.detach().clone(), task.calls


def pets_loop(examples, micro: int, accumulation: int, steps: int) -> torch.Tensor:
    """PET's wrapper.train written out: micro-batches in order, loss / accumulation, clip 1, AdamW, linear decay;
    its own hinge (CopaTaskHelper: max(0, 1 + CE(correct) - CE(wrong)), CE = mean token cross-entropy)."""
    head = LinearMethod().head
    optimizer = torch.optim.AdamW(head.parameters(), lr=TRAINER["lr"], weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (steps - s) / steps))
    batches = [examples[i : i + micro] for i in range(0, len(examples), micro)]
    done, step = 0, 0
    while done < steps:
        for chunk in batches:
            ce_good, n_good, ce_bad, n_bad = 0.0, 0, 0.0, 0
            for ex in chunk:
                at = 0
                for choice, n in enumerate(ex["lengths"]):
                    for x, t in ex["tokens"][at : at + n]:
                        ce = -torch.log_softmax(head(x), -1)[t]
                        if choice == 0:
                            ce_good, n_good = ce_good + ce, n_good + 1
                        else:
                            ce_bad, n_bad = ce_bad + ce, n_bad + 1
                    at += n
            loss = torch.clamp(1.0 + ce_good / n_good - ce_bad / n_bad, min=0.0)
            (loss / accumulation).backward()
            step += 1
            if step % accumulation == 0:
                torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                head.zero_grad()
                done += 1
                if done == steps:
                    break
    return head.weight.detach().clone()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_accumulated_micro_batches_equal_one_batch_for_a_mean_ce():
    examples = copa_like(8)
    one, calls_one = trained(examples, "ce", 8, 1, steps=3)
    accumulated, calls_acc = trained(examples, "ce", 2, 4, steps=3)
    assert (calls_one, calls_acc) == (3, 12)  # 3 optimizer steps: 3 batches of 8, or 12 micro-batches of 2
    assert rel(accumulated, one) < 1e-6
    assert rel(one, LinearMethod().head.weight.detach()) > 1e-2  # and training moved the weights


def test_copas_hinge_accumulated_is_pets_mean_of_micro_batch_hinges_not_the_one_batch_hinge():
    examples = copa_like(8)
    accumulated, _ = trained(examples, "hinge", 2, 4, steps=3)
    assert rel(accumulated, pets_loop(examples, 2, 4, 3)) < 1e-6
    one, _ = trained(examples, "hinge", 8, 1, steps=3)
    assert rel(accumulated, one) > 1e-3  # the hinge is not linear in the batch: one batch of 8 trains otherwise
    assert rel(one, pets_loop(examples, 8, 1, 3)) < 1e-6  # (the plain loop with one batch gives the one-batch run)


def test_steps_count_optimizer_steps_and_micro_batches_run_on_across_epochs():
    # 10 examples in micro-batches of 2: 5 per epoch; accumulation 4 over 2 epochs steps after micro-batches
    # 4 and 8 (the second window takes epoch 0's last and epoch 1's first three), the last 2 step nothing
    method, task = LinearMethod(), ToyTask(copa_like(10), "ce")
    result = fit(method, task, {**TRAINER, "batch_size": 2, "grad_accumulation_steps": 4, "max_epochs": 2}, "dev",
                 steps_per_epoch=5)
    assert (result.steps, result.epochs, task.calls) == (2, 2, 10)
    assert planned_steps(2, None, 5, 4) == 2 and planned_steps(2, 1, 5, 4) == 1


def test_backward_gets_each_micro_batch_loss_over_n_and_the_optimizer_steps_every_n():
    method, task = LinearMethod(), ToyTask(copa_like(8), "ce")
    cfg = {**TRAINER, "batch_size": 2, "grad_accumulation_steps": 4, "max_steps": 2, "max_epochs": 5}
    steps = fit_steps(method, task, cfg, "dev", progress=False)
    weights, sent, backpropagated = [], [], []
    batch = next(steps)
    try:
        while True:
            weights.append(method.head.weight.detach().clone())
            loss = task.loss(method.scorer()(batch), batch)
            term = steps.send(loss)
            sent.append(float(loss.detach()))
            backpropagated.append(float(term.detach()))
            term.backward()
            batch = next(steps)
    except StopIteration:
        pass
    assert backpropagated == pytest.approx([v / 4 for v in sent], rel=1e-7)
    changed = [not torch.equal(a, b) for a, b in zip(weights, weights[1:], strict=False)]
    assert changed == [False, False, False, True, False, False, False]  # a step after the 4th micro-batch only


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "8"])
def test_a_bad_accumulation_count_is_refused_naming_the_key(bad):
    with pytest.raises(ConfigError, match="trainer.grad_accumulation_steps"):
        fit(LinearMethod(), ToyTask(copa_like(2), "ce"), {**TRAINER, "batch_size": 2, "grad_accumulation_steps": bad,
                                                           "max_epochs": 1}, "dev")


@pytest.mark.slow
def test_joint_training_accumulates_as_the_separate_runs_do(tiny_backbone):
    """bench.joint drives fit_steps per micro-batch: two P-Tuning LAMA members with accumulation 2 (one with an odd
    number of micro-batches per epoch, so a window spans two epochs) equal their separate runs: the same steps,
    evaluations and losses, parameters to 1e-4 relative (Adam turns float noise in near-zero gradients into
    updates of +-lr: 2e-5 measured here; a wrong accumulation moves them by far more)."""
    from test_joint_training import TRAINER as JOINT_TRAINER
    from test_joint_training import lama_maker, rel_norm, run_both

    backbone = tiny_backbone("tiny-bert")
    trainer = {**JOINT_TRAINER, "grad_accumulation_steps": 2, "max_epochs": 2, "early_stopping_patience": None,
               "schedule": "linear", "warmup_steps": 1}
    separate, joint, sep_p, joint_p, start = run_both(lama_maker(backbone, encoder="mlp", backbone_dropout=True),
                                                      [("capital", 3), ("country", 4)], lambda i: trainer)
    assert [r.steps for r in separate] == [r.steps for r in joint] == [3, 2]  # 5 facts: 3 x 2 epochs / 2; 4: 2 x 2 / 2
    for res_s, res_j in zip(separate, joint, strict=True):
        assert [(h["step"], h["kept"]) for h in res_j.history] == [(h["step"], h["kept"]) for h in res_s.history]
        assert [h["value"] for h in res_j.history] == pytest.approx([h["value"] for h in res_s.history], rel=1e-5)
        assert res_j.losses == pytest.approx(res_s.losses, rel=1e-5)
    assert max(rel_norm(a, b) for ps, pj in zip(sep_p, joint_p, strict=True) for a, b in zip(ps, pj, strict=True)) < 1e-4
    assert all(rel(e[0], s[0]) > 1e-3 for s, e in zip(start, sep_p, strict=True))  # and they trained (5e-3)


def test_a_bad_accumulation_count_is_refused_before_weights_load():
    from bench.checks import validate_config
    from bench.study import compose_job, hydra_context

    with hydra_context():
        validate_config(compose_job("fewglue_pet_rte", "tiny-albert", []))  # the recipe's 8 passes
        bad = compose_job("fewglue_pet_rte", "tiny-albert", ["trainer.grad_accumulation_steps=0"])
    with pytest.raises(ConfigError, match=r"trainer.grad_accumulation_steps=0 must be a whole number >= 1"):
        validate_config(bad)
