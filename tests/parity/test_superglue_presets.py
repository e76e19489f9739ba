"""SuperGLUE presets carry P-tuning-v2's recipe where the goldens cannot see it (issue 24 items 6-8, 10, 13, 14).

Facts from THUDM/P-tuning-v2 @b1520c9: every run_script passes --max_seq_length 128 and no --fp16;
only run_wic_bert.sh passes --prefix_projection (and --template_id 1); the dataset trains on the
whole train split as is (no COPA mirroring, nothing held out). THUDM/P-tuning PT-Fewshot: the prompt
encoder's optimizer runs at --learning_rate (1e-4 in every released script), the model's at 1e-5.
"""

from __future__ import annotations

import pytest

from bench.parity import superglue as P
from bench.study import compose_job, hydra_context, load_study
from bench.superglue.data import split_file


@pytest.fixture(scope="module")
def frozen_presets():
    with hydra_context():
        return {p: compose_job(p, "tiny-bert", []) for p in load_study("superglue_frozen")["presets"]}


@pytest.fixture(scope="module")
def supervised_presets():
    with hydra_context():
        return {p: compose_job(p, "tiny-bert", []) for p in load_study("superglue")["presets"]}


def test_reproduction_presets_run_fp32_at_length_128_on_the_references_inputs(frozen_presets, supervised_presets):
    for name, cfg in {**frozen_presets, **supervised_presets}.items():
        assert (cfg.dtype, cfg.frozen_dtype) == ("fp32", "fp32"), name
        if name.startswith(("sgv2_ptuning_v2_", "sgv2_finetune_", "sgv2_prompt_tuning_")):  # ReCoRD: PET's form (C)
            assert cfg.task.max_length == 128, name
            assert cfg.task.classifier_inputs == ("pet" if cfg.task.name == "record" else "ptv2"), name
        if name.startswith("sg_clsft_") and cfg.task.name not in ("multirc", "record"):
            assert cfg.task.max_length == 128, name
        if cfg.task.name == "copa":  # P-Tuning v2's table: its code does not mirror; the P-Tuning rows are PET's (mirrored)
            assert cfg.task.mirror_copa is (not name.startswith("sgv2_")), name


def test_only_wic_bert_uses_the_prefix_mlp_and_template_1(frozen_presets):
    v2 = {n: c for n, c in frozen_presets.items() if n.startswith("sgv2_ptuning_v2_")}
    assert len(v2) == 20
    for name, cfg in v2.items():
        wic_bert = "_wic_bert" in name
        assert bool(cfg.method.component.get("reparameterize")) == wic_bert, name
        assert int(cfg.task.get("classifier_template") or 0) == (1 if wic_bert else 0), name
        if wic_bert:
            assert cfg.method.component.mid_dim == 512
        assert cfg.method.component.init == "reference" and cfg.method.component.dropout_per_example, name


def test_finetune_and_prompt_rows_run_the_references_models(frozen_presets):
    """Differences A and B: AutoModelFor* heads with from_pretrained's init, the backbone frozen for COPA alone
    (get_trainer.py: fix_bert=True for multiple choice); --prompt's model at --pre_seq_len 4, template 0."""
    finetune = {n: c for n, c in frozen_presets.items() if n.startswith("sgv2_finetune_")}
    prompt = {n: c for n, c in frozen_presets.items() if n.startswith("sgv2_prompt_tuning_")}
    assert len(finetune) == len(prompt) == 8
    for name, cfg in finetune.items():
        component = cfg.method.component
        assert (component.head, component.init) == ("auto_model", "reference"), name
        assert component.freeze_backbone is (cfg.task.name == "copa"), name
    for name, cfg in prompt.items():
        assert cfg.method.name == "prompt_classifier" and cfg.method.component.length == 4, name
        assert int(cfg.task.get("classifier_template") or 0) == 0, name
        assert list(cfg.sweep.archs) == ["bert", "roberta"], name


def test_ptuning_prompt_encoder_has_its_own_learning_rate(supervised_presets):
    rows = {n: c for n, c in supervised_presets.items() if n.startswith("sg_ptuning_")}
    assert rows and all((c.trainer.lr, c.trainer.backbone_lr) == (1e-4, 1e-5) for c in rows.values())


def test_valsel_trains_on_the_whole_train_file_and_copa_is_not_mirrored(tiny_backbone):
    rows = sum(1 for line in split_file("RTE", "train", "superglue").read_text().splitlines() if line.strip())
    bb = tiny_backbone("tiny-bert")
    valsel = P.suite_task("sgv2_ptuning_v2_rte_bert_valsel", "tiny-bert", bb)
    heldout = P.suite_task("sgv2_ptuning_v2_rte_bert", "tiny-bert", bb)
    assert len(valsel.items("train", train=True)) == rows == 2490
    assert len(heldout.items("train", train=True)) == rows - round(rows * 0.1)
    copa = P.suite_task("sgv2_ptuning_v2_copa_bert", "tiny-bert", bb)
    val = copa.examples("val")
    assert copa._train_view(val) == val  # as is: no swapped copies


def test_train_on_heldout_refuses_heldout_selection(tiny_backbone):
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="train_on_heldout"):
        with hydra_context():
            cfg = compose_job("sgv2_ptuning_v2_rte_bert", "tiny-bert", ["+task.train_on_heldout=true"])
        from hydra.utils import instantiate

        from bench.identity import resolved_config
        from bench.superglue.task import ClassificationTask

        ClassificationTask(resolved_config(cfg), tiny_backbone("tiny-bert"), instantiate(cfg.method.component))
