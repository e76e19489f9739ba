"""FewGLUE recipes: the selection rules on scripted dev scores, the optimizer groups, the few-shot encoder."""

import pytest
import torch
from torch import nn

from bench.methods.base import Method
from bench.methods.prompt_encoders import PromptEncoder
from bench.optim_groups import decay_rules
from bench.train import build_optimizer, fit


class Counter(Method):
    """One trainable weight; the tests read which evaluation (step) was kept."""

    name = "counter"
    trains = True

    def __init__(self):
        self.weight = nn.Parameter(torch.zeros(()))
        self.module = nn.Module()
        self.module.weight = self.weight
        self.backbone = type("B", (), {"model": nn.Linear(1, 1)})()

    def own_modules(self):
        return {"w": self.module}

    def scorer(self):
        return lambda batch: self.weight * batch


class Scripted:
    """Every evaluation returns the next scripted (accuracy, f1) pair."""

    def __init__(self, scores, steps_per_epoch=4):
        self.scores, self.calls, self.steps_per_epoch = list(scores), 0, steps_per_epoch

    def train_batches(self, batch_size, generator):
        return [torch.ones(())] * self.steps_per_epoch

    def loss(self, scores, batch):
        return -scores

    def evaluate(self, split, scorer):
        acc, f1 = self.scores[min(self.calls, len(self.scores) - 1)]
        self.calls += 1
        return {"overall": {"accuracy": acc, "f1_macro": f1, "score": (acc + f1) / 2}}, (acc + f1) / 2


PT = {"optimizer": "adam", "lr": 1.0, "weight_decay": 0.0, "schedule": "constant", "grad_clip": None,
      "batch_size": 1, "max_epochs": 100, "eval_every": 1, "early_stopping_patience": 10,
      "prefer_later_on_tie": True, "tie_resets_patience": False, "selection_start": 0.0, "final_eval": False}


def run(scores, steps_per_epoch=4, **cfg):
    return fit(Counter(), Scripted(scores, steps_per_epoch or 4), {**PT, **cfg}, "dev32")


def reference_loop(scores, both, patience=10, max_steps=None):
    """PT-Fewshot pet/wrapper.py's selection, written out plainly: (kept step, steps run)."""
    best_acc = best_f1 = 0.0
    best_step, bad, step = 0, 0, 0
    for acc, f1 in scores:
        step += 1
        if both:
            if acc >= best_acc and f1 >= best_f1:
                bad = 0 if (acc > best_acc and f1 > best_f1) else bad + 1
                best_acc, best_f1, best_step = acc, f1, step
            else:
                bad += 1
        else:
            if acc >= best_acc:
                bad = 0 if acc > best_acc else bad + 1
                best_acc, best_step = acc, step
            else:
                bad += 1
        if bad >= patience or (max_steps and step >= max_steps):
            break
    return best_step, step


CB = [(0.5, 0.4), (0.6, 0.3), (0.6, 0.4), (0.7, 0.5), (0.7, 0.5), (0.8, 0.2), (0.4, 0.9)]


def test_cb_both_metrics_rule_by_hand():
    # kept: 1 (both > 0), not 2 (f1 fell), 3 (tie on f1, acc up), 4 (both up), 5 (tie: the later), not 6, 7
    result = run(CB, selection_rule="both", selection_metrics=["accuracy", "f1_macro"], max_steps=7)
    assert [h["kept"] for h in result.history] == [True, False, True, True, True, False, False]
    assert result.best_step == 5 == reference_loop(CB, both=True)[0]


def test_single_metric_rule_uses_the_selection_score_and_ties_keep_the_later_state():
    scores = [(0.5, 0.5), (0.7, 0.7), (0.7, 0.7), (0.6, 0.6)]
    assert run(scores, max_steps=4).best_step == 3
    assert run(scores, max_steps=4, prefer_later_on_tie=False).best_step == 2


@pytest.mark.parametrize("both", [True, False])
def test_patience_counts_ties_as_the_reference_does(both):
    # a tie keeps the later state but counts toward patience: 1 gain, then 3 ties -> stop at patience 3
    scores = [(0.5, 0.5)] * 6
    cfg = {"selection_rule": "both", "selection_metrics": ["accuracy", "f1_macro"]} if both else {}
    result = run(scores, early_stopping_patience=3, **cfg)
    kept, steps = reference_loop([(a, a) for a, _ in scores], both=both, patience=3)
    assert (result.best_step, result.steps) == (kept, steps) == (4, 4)


def test_scripted_sequences_match_the_plain_reference():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        seq = [(round(a, 1), round(b, 1)) for a, b in (torch.randint(0, 4, (12, 2), generator=gen) / 4).tolist()]
        for both in (True, False):
            cfg = {"selection_rule": "both", "selection_metrics": ["accuracy", "f1_macro"]} if both else {}
            mapped = seq if both else [(a, a) for a, _ in seq]
            result = run(mapped, early_stopping_patience=3, max_steps=12, **cfg)
            assert (result.best_step, result.steps) == reference_loop(mapped, both, patience=3, max_steps=12)


def test_pet_keeps_the_last_state_whatever_the_scores():
    result = run([(0.9, 0.9), (0.1, 0.1), (0.2, 0.2)], selection_rule="last", eval_every=None, max_epochs=3,
                 early_stopping_patience=1, steps_per_epoch=None)
    assert result.best_step == result.steps == 12 and all(h["kept"] for h in result.history)


def test_final_eval_false_never_scores_the_state_after_the_last_evaluation():
    result = run([(0.5, 0.5)] * 10, eval_every=3, max_steps=7)
    assert [h["step"] for h in result.history] == [3, 6] and result.best_step == 6
    assert run([(0.5, 0.5)] * 10, eval_every=3, max_steps=7, final_eval=True).history[-1]["step"] == 7


def test_decay_groups_follow_the_reference_name_test():
    class Backboned(Counter):
        tunes_backbone = True

        def __init__(self):
            super().__init__()
            model = nn.Module()
            model.dense = nn.Linear(2, 2)
            model.LayerNorm = nn.LayerNorm(2)
            model.full_layer_layer_norm = nn.LayerNorm(2)
            self.backbone = type("B", (), {"model": model})()

    method = Backboned()
    cfg = {"lr": 1e-4, "backbone_lr": 1e-5, "weight_decay": 0.1, "no_decay": ["bias", "LayerNorm.weight"],
           "method_weight_decay": 0.0}
    groups = {g["name"]: g for g in decay_rules(method, method.param_groups(cfg), cfg)}
    model = method.backbone.model
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(groups["backbone"]["params"]) == ids([model.dense.weight, model.full_layer_layer_norm.weight])
    assert ids(groups["backbone_no_decay"]["params"]) == ids(
        [model.dense.bias, model.LayerNorm.weight, model.LayerNorm.bias, model.full_layer_layer_norm.bias])
    assert groups["method"]["weight_decay"] == 0.0 and groups["method"]["lr"] == 1e-4
    optimizer = build_optimizer(method, {**cfg, "optimizer": "adamw"})
    by_name = {g["name"]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups}
    assert by_name == {"method": (1e-4, 0.0), "backbone": (1e-5, 0.1), "backbone_no_decay": (1e-5, 0.0)}


def test_few_shot_encoder_has_the_reference_shapes():
    enc = PromptEncoder("lstm_full", num_tokens=3, dim=16, hidden_size=8)
    shapes = {n: tuple(p.shape) for n, p in enc.named_parameters()}
    # PT-Fewshot: LSTM(input h, hidden h, 2 layers, bidirectional), Linear(2h, h), ReLU, Linear(h, h)
    assert shapes["lstm.weight_ih_l0"] == (32, 16) and shapes["lstm.weight_hh_l0"] == (32, 8)
    assert shapes["lstm.weight_ih_l1"] == (32, 16) and shapes["mlp.0.weight"] == (8, 16)
    assert shapes["mlp.2.weight"] == (16, 8) and enc().shape == (3, 16)


def test_presets_compose_to_the_reference_recipes_and_smoke_caps_them():
    from bench.study import compose_job, hydra_context

    with hydra_context():
        rte = compose_job("fewglue_ptuning_rte", "tiny-albert", [])
        cb = compose_job("fewglue_ptuning_cb", "tiny-albert", [])
        pet = compose_job("fewglue_pet_multirc", "tiny-albert", [])
        smoke = compose_job("fewglue_pet_cb", "tiny-albert", ["debug=smoke"])
    # PT-Fewshot/scripts/rte_pt_few_shot.sh: 3500 steps, warmup 150, lr 1e-4, length 256; wrapper.py defaults
    assert (rte.trainer.max_steps, rte.trainer.warmup_steps, rte.trainer.lr, rte.task.max_length) == (3500, 150, 1e-4, 256)
    assert (rte.trainer.backbone_lr, rte.trainer.weight_decay, rte.trainer.method_weight_decay) == (1e-5, 0.1, 0.0)
    assert (rte.trainer.eval_every, rte.trainer.early_stopping_patience, rte.trainer.selection_rule) == (20, 10, "max")
    assert list(cb.trainer.selection_metrics) == ["accuracy", "f1_macro"] and cb.trainer.lr == 1e-5
    assert cb.method.component.encoder == "lstm_full" and cb.method.component.hidden_size == 128
    # timoschick/pet README: --pet_per_gpu_train_batch_size 2 --pet_gradient_accumulation_steps 8 (16 per step)
    assert (pet.trainer.max_steps, pet.trainer.lr, pet.trainer.weight_decay) == (250, 1e-5, 0.01)
    assert (pet.trainer.batch_size, pet.trainer.grad_accumulation_steps) == (2, 8)
    # timoschick/pet README's SuperGLUE command: --pet_max_seq_length 256 for every task (issue 23, item I)
    assert pet.task.max_length == 256 and pet.task.selection_split is None and pet.trainer.selection_rule == "last"
    assert smoke.trainer.max_steps == 10 and smoke.task.max_length == 256  # debug=smoke caps the recipe's steps
