"""Lester et al.'s "Model Tuning" (``lester_model_tuning_<task>``: ``method=model_tuning``, PET's class with the
text-to-text form): every T5 weight tuned on the decoder's label string.

The recipe values are written here from their sources: the paper (Section 3.1: public T5.1.1 checkpoints, learning
rate 0.001, Adafactor; footnote 3: 2^16 tokens per batch), t5x configs/runs/finetune.gin @0183fb0 (constant lr
0.001, BATCH_SIZE 128, checkpoints every 5,000 steps) and t5x's t5_1_1 gin files (Adafactor decay_rate 0.8 and its
default parameter scaling, Z_LOSS 1e-4). The loss is recomputed with transformers' T5 on hand-written T5 inputs.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import yaml

from bench.paths import REPO_ROOT

TASKS = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic")


@pytest.mark.parametrize("task", [*TASKS, "wsc"])
def test_preset_carries_the_model_tuning_recipe(task):
    from bench.inputs import compose_job, hydra_compose
    from bench.job import not_applicable

    with hydra_compose():
        cfg = compose_job(f"lester_model_tuning_{task}", "t5-v1_1-large", [])
        lm_adapted = compose_job(f"lester_model_tuning_{task}", "t5-large-lm-adapt", [])
        smoke = compose_job(f"lester_model_tuning_{task}", "tiny-t5", ["debug=lester_smoke"])
    tr, t = cfg.trainer, cfg.task
    assert (cfg.method.name, cfg.method.component.form, cfg.method.trainable) == ("model_tuning", "text2text", "backbone")
    assert (tr.optimizer, tr.adafactor, tr.lr, tr.schedule, tr.warmup_steps, tr.weight_decay) == (
        "adafactor", "t5x", 0.001, "constant", 0, 0.0)
    assert tr.adafactor_parameter_scale is True and tr.batch_size == 2 ** 16 // 512 and tr.eval_every == 5000
    assert (t.text2text_loss, t.max_length, t.selection_split, t.protocol) == ("target", 512, "val", "val_selection")
    assert math.isclose(t.z_loss, 1e-4) and "T5" in t.val_selection_by and not t.get("prompt_outside_budget")
    assert (cfg.template.name, cfg.dtype) == (f"t5_{task}_taskless", "fp32")
    assert not_applicable(cfg) is None and "span_corruption" in not_applicable(lm_adapted)  # the public T5.1.1 only
    assert (smoke.trainer.max_steps, smoke.trainer.eval_every, tr.max_steps) == (2, 1, 30_000)  # a group file: debug wins


def test_study_runs_model_tuning_on_every_task_but_wsc():
    study = yaml.safe_load((REPO_ROOT / "conf/study/lester.yaml").read_text())
    assert [p for p in study["presets"] if p.startswith("lester_model_tuning_")] == [f"lester_model_tuning_{t}" for t in TASKS]


def test_one_step_tunes_every_weight_with_gradient_on_the_text2text_loss(tiny_backbone):
    from bench.methods.pet import PatternTuning
    from bench.superglue.task import LAST, ClassificationTask
    from bench.train import fit

    backbone = copy.deepcopy(tiny_backbone("tiny-t5"))
    for module in backbone.model.modules():  # no dropout: the recomputation below must see the same forward pass
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        elif isinstance(getattr(module, "dropout", None), float):  # T5Attention's functional dropout on the weights
            module.dropout = 0.0
    method = PatternTuning(form="text2text")
    method.setup(backbone)
    template = yaml.safe_load((REPO_ROOT / "conf/template/t5_rte_taskless.yaml").read_text())
    cfg = {"seed": 42, "paths": {}, "template": template, "model": {"name": "tiny-t5"},
           "method": {"name": "model_tuning"},
           "task": {"name": "rte", "dataset": "RTE", "variant": "superglue", "limit": 4, "max_length": 256,
                    "batch_size": 64, "eval_splits": ["val"], "text2text_loss": "target", "z_loss": 1e-4}}
    task = ClassificationTask(cfg, backbone, method)
    assert task.mode == "text2text"
    train = task.examples("train")
    assert 1 <= len(train) <= 64  # one batch holds the whole train set: the step's loss is over all of it
    before = copy.deepcopy(backbone.model)

    # the plain recomputation: T5 itself on hand-written inputs (t5_rte_taskless) and label strings
    tok, model = backbone.tokenizer, before
    expected = 0.0
    for ex in train:
        text = f"hypothesis: {ex.fields['hypothesis']} premise: {ex.fields['premise']}"
        target = tok(("entailment", "not_entailment")[ex.label], return_tensors="pt").input_ids  # tfds order, + </s>
        logits = model(input_ids=tok(text, return_tensors="pt").input_ids, labels=target).logits[0].float()
        log_z = torch.logsumexp(logits, dim=-1)
        nll = log_z - logits.gather(1, target[0][:, None]).squeeze(1)
        expected = expected + (nll + 1e-4 * log_z.square()).sum()
    expected.backward()
    with_grad = {n for n, p in before.named_parameters() if p.grad is not None and p.grad.abs().max() > 0}

    trainer = {"optimizer": "adafactor", "adafactor": "t5x", "adafactor_parameter_scale": True, "lr": 1e-3,
               "weight_decay": 0.0, "batch_size": 64, "max_epochs": 1, "max_steps": 1, "schedule": "constant",
               "early_stopping_patience": None, "eval_every": None}
    result = fit(method, task, trainer, LAST, seed=42, steps_per_epoch=1)
    assert result.steps == 1 and math.isclose(result.losses[0], float(expected.detach()), rel_tol=1e-5), (result.losses, float(expected.detach()))
    after = dict(backbone.model.named_parameters())
    changed = {n for n, p in before.named_parameters() if not torch.equal(p.detach(), after[n].detach())}
    everything = {n for n, _ in before.named_parameters()}
    assert with_grad == everything, everything - with_grad  # every weight of tiny T5 gets a gradient from this batch
    assert changed == everything  # and the one step moved each of them (nothing is frozen)
