"""The fewglue study composes: every preset validates before weights load; the few-shot baselines (CLS
fine-tuning, Prompt Tuning) follow P-Tuning's per-task schedule, select on dev32, and say what they tune."""

from bench.checks import validate_config
from bench.study import compose_job, hydra_context, load_study

TASKS = ("boolq", "cb", "copa", "multirc", "rte", "wic", "wsc")


def test_every_fewglue_preset_composes_and_validates(tmp_path):
    with hydra_context():
        presets = load_study("fewglue")["presets"]
        for preset in presets:
            cfg = compose_job(preset, "tiny-albert", [f"paths.results_dir={tmp_path}"])
            validate_config(cfg)
            assert cfg.task.variant == "fewglue", preset
        for task in TASKS:
            assert {f"fewglue_clsft_{task}", f"fewglue_prompt_tuning_{task}", f"fewglue_ptuning_{task}"} <= set(presets)
            ptuning = compose_job(f"fewglue_ptuning_{task}", "tiny-albert", [])
            cls = compose_job(f"fewglue_clsft_{task}", "tiny-albert", [])
            prompt = compose_job(f"fewglue_prompt_tuning_{task}", "tiny-albert", [])
            for cfg in (cls, prompt):  # P-Tuning's schedule for the task, dev32 selection
                assert cfg.trainer.max_steps == ptuning.trainer.max_steps and cfg.trainer.eval_every == 20
                assert cfg.trainer.early_stopping_patience == 10 and cfg.task.selection_split == "dev32"
            assert cls.method.trainable == "backbone+head" and cls.trainer.lr == 1e-5 == cls.trainer.backbone_lr
            assert prompt.method.trainable == "prompt" and prompt.trainer.lr == ptuning.trainer.lr
            assert prompt.template.name == f"pet_{task}" and prompt.template.rank == 0
        assert compose_job("fewglue_clsft_multirc", "tiny-albert", []).task.max_length == 512
