"""The Lester study (issue 30): recipe values, ablation grids, model entries, T5X's Adafactor and loss, tiny plumbing.

Expected values are written here from their sources, not read off the YAML: google-research/prompt-tuning
@72285ee (configs/models/t5_1_1_prompt.gin: PROMPT_LENGTH 100, Adafactor decay_rate 0.8 /
multiply_by_parameter_scale False / weight_decay_rate 1e-5, Z_LOSS 1e-4; configs/runs/prompt_finetune.gin:
constant lr 0.3; configs/prompts/from_class_labels.gin: population_size 5000), t5x configs/runs/finetune.gin
(EVAL_PERIOD 1000, DROPOUT_RATE 0.1, the 'validation' split scored) and the paper (30,000 steps, batch 32).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

TASKS = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc")
# T5's label names (t5/data/tasks.py via tfds super_glue ClassLabel names): the CLASS_LABELS a launch passes
T5_LABELS = {"boolq": ["False", "True"], "cb": ["entailment", "contradiction", "neutral"], "copa": ["choice1", "choice2"],
             "multirc": ["False", "True"], "rte": ["entailment", "not_entailment"], "wic": ["False", "True"]}
# T5 1.1 shapes (prompt-tuning configs/models/sizes/*.gin): heads, layers per stack, d_model, d_ff; head dim 64
SIZES = {"small": (6, 8, 512, 1024), "base": (12, 12, 768, 2048), "large": (16, 24, 1024, 2816),
         "xl": (32, 24, 2048, 5120), "xxl": (64, 24, 4096, 10240)}


@pytest.fixture
def compose():  # per test: a Hydra context left open would refuse the study run below
    from bench.inputs import compose_job
    from bench.study import hydra_context

    with hydra_context():
        yield lambda preset, model="t5-large-lm-adapt", extra=(): compose_job(preset, model, list(extra))


@pytest.mark.parametrize("task", TASKS)
def test_preset_carries_the_released_recipe(compose, task):
    cfg = compose(f"lester_prompt_tuning_{task}")
    tr, m, t = cfg.trainer, cfg.method.component, cfg.task
    assert (tr.optimizer, tr.adafactor, tr.lr, tr.schedule, tr.warmup_steps) == ("adafactor", "t5x", 0.3, "constant", 0)
    assert math.isclose(tr.weight_decay, 1e-5) and tr.grad_clip is None
    assert (tr.batch_size, tr.max_steps, tr.eval_every, tr.early_stopping_patience) == (32, 30_000, 1_000, None)
    assert tr.max_epochs >= 30_000  # epochs never end training before the step budget
    assert (m.form, m.length, m.vocab_population, m.backbone_dropout) == ("text2text", 100, 5000, True)
    if task in T5_LABELS:
        assert (m.init, list(m.init_labels)) == ("labels", T5_LABELS[task])
    else:  # ReCoRD / WSC targets are free text: no class labels to embed
        assert m.init == "vocab"
    assert (t.variant, t.selection_split, t.report_split, t.allow_val_selection) == ("superglue", "val", "val", True)
    assert (t.protocol, t.text2text_loss, t.max_length, t.prompt_outside_budget) == ("val_selection", "target", 512, True)
    assert math.isclose(t.z_loss, 1e-4) and not t.get("target_sentinel")
    assert "prompt-tuning" in t.val_selection_by  # the record's selection rule names it, not P-Tuning v2
    # prompt-tuning's own SuperGLUE configs train taskless_super_glue_* (configs/test/train_t5_1_1_tiny_prompt.gin:19)
    assert (cfg.template.name, cfg.dtype, list(cfg.sweep.archs)) == (f"t5_{task}_taskless", "fp32", ["t5"])


def test_ablation_grids_and_checkpoint_filter(compose):
    from bench.job import not_applicable, plan_job

    main = plan_job(compose("lester_prompt_tuning_rte"), "lester_prompt_tuning_rte")
    length = plan_job(compose("lester_length_rte"), "lester_length_rte")
    init = plan_job(compose("lester_init_rte"), "lester_init_rte")
    assert [r.cfg.method.component.length for r in length] == [1, 5, 20, 100, 150]
    assert [r.cfg.method.component.init for r in init] == ["random", "vocab", "labels"]
    assert [r.cfg.method.component.init for r in plan_job(compose("lester_init_wsc"), "x")] == ["random", "vocab"]
    # the default point of each ablation is the default preset's own run (one record, not two)
    assert {r.spec.name for r in length} & {r.spec.name for r in init} == {main[0].spec.name}
    assert len({r.spec.name for r in length + init}) == 5 + 3 - 1
    sentinel = compose("lester_sentinel_rte", "t5-v1_1-large")
    assert sentinel.task.target_sentinel is True and not_applicable(sentinel) is None
    assert plan_job(sentinel)[0].spec.name != plan_job(compose("lester_prompt_tuning_rte", "t5-v1_1-large"))[0].spec.name
    assert "span_corruption" in not_applicable(compose("lester_sentinel_rte"))  # not on LM-adapted checkpoints
    assert "lm_adapt" in not_applicable(compose("lester_length_rte", "t5-v1_1-large"))
    assert not_applicable(compose("lester_prompt_tuning_rte", "t5-v1_1-large")) is None  # "Span Corruption" point
    assert not_applicable(compose("lester_sentinel_rte", "tiny-t5")) is None  # no checkpoint field: runs everything


def test_study_declares_every_task_axis_and_tiny_mapping():
    from bench.study import debug_override, load_study

    study = load_study("lester")
    studied = [t for t in TASKS if t != "wsc"]  # T5 generates WSC's referent: no text-to-text WSC scoring here
    for kind in ("prompt_tuning", "length", "init", "sentinel", "ensemble"):
        assert [p for p in study["presets"] if p.startswith(f"lester_{kind}_")] == [f"lester_{kind}_{t}" for t in studied]
    sizes = list(SIZES)
    assert study["models"] == [f"t5-{s}-lm-adapt" for s in sizes] + [f"t5-v1_1-{s}" for s in sizes]
    assert len(study["seeds"]) == 5 and study["debug_seeds"] == study["seeds"]  # Table 3 ensembles five prompts
    assert debug_override(study, ["tiny-t5"], []) == "debug=lester_smoke"


def test_model_entries_count_parameters_independently():
    from bench.backbones.loading import load_model_config

    vocab, head = 32128, 64
    for size, (heads, layers, d, ff) in SIZES.items():
        inner = heads * head
        encoder = layers * (4 * d * inner + 3 * d * ff + 2 * d)  # self-attention, gated-GELU FF, 2 RMS norms
        decoder = layers * (8 * d * inner + 3 * d * ff + 3 * d)  # + cross-attention, 3 norms
        expected = 2 * vocab * d + encoder + decoder + 2 * d + 2 * 32 * heads  # untied head, final norms, rel. bias
        for name, ckpt in ((f"t5-v1_1-{size}", "span_corruption"), (f"t5-{size}-lm-adapt", "lm_adapt")):
            cfg = load_model_config(name)
            assert (cfg["num_params"], cfg["checkpoint"], cfg["arch"]) == (expected, ckpt, "t5"), name
    assert load_model_config("t5-v1_1-small")["num_params"] == 76_961_152  # transformers' count of the hub checkpoint


def _t5x_step(param, state, grad, step, lr=0.3, wd=1e-5, min_dim=128, scale=False):
    """t5x.adafactor apply_param_gradient (decay 0.8, no momentum, clip 1.0, eps1 1e-30; ``scale``:
    multiply_by_parameter_scale, the lr times max(epsilon2 1e-3, rms of the parameter before the step))."""
    if scale:
        lr = lr * max(1e-3, float(param.square().mean().sqrt()))
    decay = 1.0 - (step + 1.0) ** -0.8
    g2 = grad * grad + 1e-30
    if sorted(param.shape)[-2] >= min_dim:
        state["r"] = decay * state.get("r", 0) + (1 - decay) * g2.mean(1)
        state["c"] = decay * state.get("c", 0) + (1 - decay) * g2.mean(0)
        y = grad * (state["r"] / state["r"].mean())[:, None] ** -0.5 * state["c"][None, :] ** -0.5
    else:
        state["v"] = decay * state.get("v", 0) + (1 - decay) * g2
        y = grad * state["v"] ** -0.5
    y = y / max(1.0, float(y.square().mean().sqrt()))
    return (1.0 - wd) * param - lr * y


@pytest.mark.parametrize("shape", [(100, 64), (150, 256)])  # unfactored (64 < 128) and factored
def test_t5x_adafactor_matches_the_t5x_update(shape):
    from transformers.optimization import Adafactor

    from bench.adafactor import T5XAdafactor

    gen = torch.Generator().manual_seed(0)
    start = torch.randn(shape, generator=gen, dtype=torch.float64)
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3)]
    ours, hf = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    opt = T5XAdafactor([{"params": [ours], "weight_decay": 1e-5}], lr=0.3)
    hf_opt = Adafactor([hf], lr=0.3, relative_step=False, scale_parameter=False, warmup_init=False, weight_decay=1e-5)
    ref, state = start.clone(), {}
    for step, grad in enumerate(grads):
        for p, o in ((ours, opt), (hf, hf_opt)):
            p.grad = grad.clone()
            o.step()
        ref = _t5x_step(ref, state, grad, step)
    assert torch.allclose(ours.detach(), ref, rtol=0, atol=1e-12)
    assert not torch.allclose(hf.detach(), ref, rtol=0, atol=1e-9)  # transformers' rules differ (decay x lr, factoring)


def test_target_token_loss_by_hand():
    from types import SimpleNamespace

    from bench.superglue.losses import target_token_loss

    # two examples x two label strings; slots: ex0 opt0 (2 tokens), ex0 opt1 (1), ex1 opt0 (1), ex1 opt1 (2)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0], [0.0, 2.0, 2.0],
                           [3.0, 0.0, 1.0]])
    batch = SimpleNamespace(unit_owner=torch.tensor([0, 0, 1, 1]), unit_option=torch.tensor([0, 1, 0, 1]),
                            labels=torch.tensor([1, 1]), slot_owner=torch.tensor([0, 0, 1, 2, 3, 3]),
                            slot_tokens=torch.tensor([0, 1, 2, 0, 1, 0]))
    # gold units: 1 (slot 2, token 2) and 3 (slots 4, 5: tokens 1, 0)
    terms = [(math.log(2 + math.exp(3)), 3.0), (math.log(1 + 2 * math.exp(2)), 2.0), (math.log(math.exp(3) + 1 + math.e), 3.0)]
    expected = sum(z - picked + 1e-4 * z * z for z, picked in terms)
    assert math.isclose(float(target_token_loss(logits, batch, z_loss=1e-4)), expected, rel_tol=1e-6)


def test_sentinel_target_prepends_extra_id_0(tiny_backbone):
    from types import SimpleNamespace

    from bench.prompts.text2text import label_ids
    from bench.superglue.task import ClassificationTask

    tok = tiny_backbone("tiny-t5").tokenizer
    plain = label_ids("entailment", tok)
    stub = SimpleNamespace(tok=tok, task_cfg={"target_sentinel": True})
    assert ClassificationTask._label_ids(stub, "entailment") == [tok.convert_tokens_to_ids("<extra_id_0>"), *plain]
    assert plain[-1] == tok.eos_token_id and tok.convert_tokens_to_ids("<extra_id_0>") not in plain


def test_tiny_study_runs_and_a_rerun_launches_nothing(tmp_path, tiny_backbone, monkeypatch, capsys):
    import bench.study as study_cli

    tiny_backbone("tiny-t5")  # built once for the session
    real = study_cli.load_study

    def one_seed(name, *args, **kwargs):  # one seed instead of five: the plumbing, not the ensemble
        study = real(name, *args, **kwargs)
        study["seeds"] = study["debug_seeds"] = [42]
        return study

    monkeypatch.setattr(study_cli, "load_study", one_seed)
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = ["run", "lester", "--models", "tiny-t5", "--presets", "lester_sentinel_rte", f"paths.results_dir={tmp_path}"]
    assert study_cli.main(argv) == 0, capsys.readouterr().out[-3000:]
    first = capsys.readouterr().out
    assert "launching:" in first and "debug=lester_smoke" in first and "study lester: 1 run now" in first
    records = list((tmp_path / "runs").rglob("*.json"))
    assert len(records) == 1 and "__smoke__" in records[0].name
    rule = json.loads(records[0].read_text())["protocol"]["selection_rule"]
    assert "google-research/prompt-tuning" in rule and "P-Tuning v2" not in rule
    assert study_cli.main(argv) == 0
    again = capsys.readouterr().out
    assert "launching:" not in again and "0 run now, 1 finished before" in again


@pytest.mark.parametrize("shape", [(100, 64), (150, 256)])
def test_t5x_adafactor_with_parameter_scale_matches_the_t5x_update(shape):  # Model Tuning's t5x default
    from bench.adafactor import T5XAdafactor

    gen = torch.Generator().manual_seed(1)
    start = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.05  # rms 0.05: the scale is not epsilon2
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3)]
    ours = start.clone().requires_grad_(True)
    opt = T5XAdafactor([{"params": [ours]}], lr=1e-3, scale_parameter=True)
    ref, state = start.clone(), {}
    for step, grad in enumerate(grads):
        ours.grad = grad.clone()
        opt.step()
        ref = _t5x_step(ref, state, grad, step, lr=1e-3, wd=0.0, scale=True)
    assert torch.allclose(ours.detach(), ref, rtol=0, atol=1e-12)
    assert not torch.allclose(ref, _unscaled(start, grads), rtol=0, atol=1e-6)  # the scale changes the update


def _unscaled(start, grads):
    ref, state = start.clone(), {}
    for step, grad in enumerate(grads):
        ref = _t5x_step(ref, state, grad, step, lr=1e-3, wd=0.0)
    return ref
