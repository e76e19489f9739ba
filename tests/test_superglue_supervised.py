"""Fully supervised SuperGLUE: missing data is reported before weights load (with the fetch command),
val selection needs its flag and marks the record, MultiRC/ReCoRD read 512 tokens, the studies compose."""

import pytest

import bench.backbones.loading
from bench.errors import ConfigError, MissingDataError
from bench.job import missing_data, run_job
from bench.study import compose_job, hydra_context, load_study, plan_study
from bench.superglue.availability import FETCH_COMMAND, check_data, missing_files, needed_splits
from bench.superglue.data import split_file


def test_needed_splits_follow_the_variant_and_the_method():
    assert needed_splits({"variant": "superglue"}) == ["train", "heldout", "val"]
    assert needed_splits({"variant": "fewglue"}, trains=False) == ["dev32", "val"]
    assert needed_splits({"variant": "fewglue", "selection_split": None, "report_split": "dev32"}) == ["train", "dev32"]


def test_missing_full_train_is_an_error_naming_the_fetch_command():
    if split_file("BoolQ", "train", "superglue").is_file():
        pytest.skip("BoolQ's full train set is prepared here")
    with pytest.raises(MissingDataError) as err:
        check_data({"task": {"dataset": "BoolQ", "variant": "superglue"}})
    assert FETCH_COMMAND in str(err.value) and "BoolQ/train.jsonl" in str(err.value)
    check_data({"task": {"dataset": "BoolQ", "variant": "fewglue"}})  # FewGLUE BoolQ is local
    assert missing_files({"dataset": "RTE", "variant": "superglue"}) == []


def test_a_single_run_fails_before_weights_load_and_a_study_skips(tmp_path, monkeypatch):
    if split_file("CB", "train", "superglue").is_file():
        pytest.skip("CB's full train set is prepared here")

    def no_loading(*args, **kwargs):
        raise AssertionError("weights loaded")

    monkeypatch.setattr(bench.backbones.loading, "load_backbone", no_loading)
    with hydra_context():
        cfg = compose_job("sg_clsft_cb", "tiny-bert", ["debug=smoke", f"paths.results_dir={tmp_path}"])
        assert isinstance(missing_data(cfg), MissingDataError)
        outcome = run_job(cfg, "sg_clsft_cb")  # ranks=preset: inside a study
        assert outcome.not_applicable.startswith(str(split_file("CB", "train", "superglue")))
        cfg.ranks = None
        with pytest.raises(MissingDataError, match="data_prep superglue --full"):
            run_job(cfg, "sg_clsft_cb")
        plan = plan_study(["sg_clsft_cb", "sg_clsft_rte"], ["tiny-bert"], None, [f"paths.results_dir={tmp_path}"])
    assert [r.state for r in plan.runs] == ["missing data", "missing"]


def test_multirc_and_record_read_512_tokens_and_every_study_preset_composes(tmp_path):
    with hydra_context():
        for study in ("superglue", "superglue_frozen"):
            for preset in load_study(study)["presets"]:
                cfg = compose_job(preset, "tiny-bert", [f"paths.results_dir={tmp_path}"])
                assert cfg.task.variant == "superglue", preset
                if preset.startswith(("sgv2_finetune_", "sgv2_ptuning_v2_", "sgv2_prompt_tuning_")):  # its --max_seq_length
                    assert cfg.task.max_length == 128, preset
                elif cfg.task.name in ("multirc", "record"):
                    assert cfg.task.max_length == 512, preset
        v2 = compose_job("sgv2_ptuning_v2_rte_roberta_valsel", "tiny-roberta", [])
    assert (v2.method.component.length, v2.trainer.lr, v2.trainer.max_epochs, v2.trainer.batch_size) == (128, 5e-3, 100, 32)
    assert v2.task.selection_split == "val" and v2.task.allow_val_selection and v2.method.component.pool == "pooler"


def test_val_selection_is_refused_without_the_flag_and_marked_with_it(tiny_backbone, tmp_path):
    import copy

    from bench.methods.ptuning_v2 import PTuningV2
    from bench.superglue.runner import run_classification

    cfg = {"seed": 1, "paths": {}, "template": {},
           "task": {"dataset": "RTE", "variant": "superglue", "selection_split": "val", "report_split": "val",
                    "limit": 4, "max_length": 64, "batch_size": 4},
           "trainer": {"lr": 1e-2, "batch_size": 4, "max_epochs": 1, "max_steps": 1, "schedule": "constant",
                       "optimizer": "adamw", "weight_decay": 0.0, "early_stopping_patience": 1}}

    def method():
        m = PTuningV2(length=2, output_space="labels", pool="pooler", dropout=0.0, head_dropout=0.0)
        m.setup(copy.deepcopy(tiny_backbone("tiny-bert")))
        return m

    with pytest.raises(ConfigError, match="allow_val_selection"):
        m = method()
        run_classification(cfg, m.backbone, m)
    cfg["task"]["allow_val_selection"] = True
    m = method()
    payload = run_classification(cfg, m.backbone, m)
    assert payload["extra"]["selected_on_report"] is True
    assert payload["protocol"]["selection_split"] == payload["protocol"]["report_split"] == "val"
    assert "P-Tuning v2" not in payload["protocol"]["selection_rule"]  # no source given: none is claimed
    cfg["task"]["val_selection_by"] = "P-Tuning v2's code"  # what the sgv2 valsel presets set
    m = method()
    rule = run_classification(cfg, m.backbone, m)["protocol"]["selection_rule"]
    assert rule == "best state on val, the split it reports (task.allow_val_selection: P-Tuning v2's code; optimistic)"
