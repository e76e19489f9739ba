"""A study's SuperGLUE / FewGLUE soft-prompt runs joined into one job (issue 29): the records of the joined
job equal those of separate jobs (names, selected step and epoch, metrics, per-example predictions, trained
parameters to 1e-5 relative), only the joined ones say ``extra.joint.trained_jointly``; a member that
fails leaves the others' records and its own failure marker; the study planner joins exactly the
joinable jobs (fp32, CPU, tiny models, a few steps)."""

import json

import pytest
import torch

import bench.job
from bench.job import JobFailed, run_job
from bench.predictions import read_predictions
from bench.records import load_record
from bench.study import compose_job, expand_overrides, hydra_context
from bench.study_join import plan_joins

# a few steps of each recipe on 8 (FewGLUE) / 16 (SuperGLUE) examples: batch 4, evaluated every 2 steps
SHORT = ["device=cpu", "trainer.batch_size=4", "trainer.max_epochs=3", "trainer.max_steps=6", "trainer.eval_every=2",
         "trainer.warmup_steps=1", "trainer.early_stopping_patience=null"]
PROMPT_TUNING = ("fewglue_prompt_tuning_rte", ["debug=fewglue_smoke", *SHORT, "trainer.lr=3e-2"])  # PET pattern 0
PTUNING = ("sgv2_ptuning_rte", ["debug=smoke", *SHORT, "trainer.lr=1e-2"])  # frozen BERT, dropout on


def _key(config: dict) -> tuple:
    return int(config["seed"]), float(config["trainer"]["lr"])


def rel_norm(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


@pytest.fixture
def trained_params(monkeypatch):
    """Each written run's trained parameters (its selected state), by (seed, learning rate), taken where the job
    builds the record."""
    seen: dict[tuple, list[torch.Tensor]] = {}
    real = bench.job._payload

    def payload(resolved, backbone, method, *args, **kwargs):
        out = real(resolved, backbone, method, *args, **kwargs)
        seen[_key(resolved)] = [p.detach().clone() for p in method.trainable_parameters()]
        return out

    monkeypatch.setattr(bench.job, "_payload", payload)
    return seen


def _jobs(preset: str, overrides: list[str], results, seeds: list[int], grid: list[float] | None, joined: bool):
    """Run the seeds as one joined job, or one job per seed whose grid points (learning rates) train one after
    another (``trainer.joint=off``, as before joining existed)."""
    from omegaconf import open_dict

    base = [*overrides, f"paths.results_dir={results}"]
    with hydra_context():
        if joined:
            cfgs = [compose_job(preset, "tiny-bert", [*base, f"seed={seeds[0]}",
                                                      f"joint_seeds=[{','.join(map(str, seeds))}]"])]
        else:
            cfgs = [compose_job(preset, "tiny-bert", [*base, f"seed={seed}", "trainer.joint=off"]) for seed in seeds]
        for cfg in cfgs:
            if grid:
                with open_dict(cfg):
                    cfg.sweep.grid = {"trainer.lr": grid}
            run_job(cfg, preset)
    return {p.name: load_record(p) for p in sorted((results / "runs").rglob("*.json"))}


def assert_same_records(separate: dict, joint: dict, results_sep, results_joint, params: dict) -> None:
    assert sorted(joint) == sorted(separate) and separate
    for name, rec in separate.items():
        other = joint[name]
        assert other["metrics"] == rec["metrics"], name
        fit, fit_j = rec["extra"]["fit"], other["extra"]["fit"]
        for key in ("best_step", "best_epoch", "best_value", "steps", "epochs", "n_train"):
            assert fit_j[key] == fit[key], (name, key)
        assert [h["value"] if isinstance(h, dict) else h for h in fit_j["history"]] == \
            [h["value"] if isinstance(h, dict) else h for h in fit["history"]], name
        assert fit_j["losses"] == pytest.approx(fit["losses"], rel=1e-5), name
        rows, rows_j = read_predictions(results_sep / rec["path_rel"]), read_predictions(results_joint / rec["path_rel"])
        assert [(r["id"], r["split"], r["prediction"]) for r in rows_j] == [(r["id"], r["split"], r["prediction"])
                                                                           for r in rows]
        assert [s for r in rows_j for s in r["scores"]] == pytest.approx([s for r in rows for s in r["scores"]],
                                                                         rel=1e-5, abs=1e-6)
        sep_p, joint_p = params["separate"][_key(rec["config"])], params["joint"][_key(other["config"])]
        assert all(rel_norm(a, b) <= 1e-5 for a, b in zip(sep_p, joint_p, strict=True)), name
        assert "joint" not in rec["extra"]
        assert other["extra"]["joint"]["trained_jointly"] is True
        assert other["extra"]["joint"]["members"] == len(separate) and rec["name"] in other["extra"]["joint"]["runs"]
        drop = ("paths", "trainer")  # and trainer.joint: off in the separate runs
        assert {k: v for k, v in other["config"].items() if k not in drop} == \
            {k: v for k, v in rec["config"].items() if k not in drop}, name
        assert {**other["config"]["trainer"], "joint": "off"} == rec["config"]["trainer"], name


def _with_paths(records: dict, results) -> dict:
    for path in (results / "runs").rglob("*.json"):
        records[path.name]["path_rel"] = str(path.relative_to(results))
    return records


def _both(tmp_path, trained_params, preset, overrides, seeds, grid=None):
    params = {}
    separate = _with_paths(_jobs(preset, overrides, tmp_path / "sep", seeds, grid, joined=False), tmp_path / "sep")
    params["separate"] = dict(trained_params)
    trained_params.clear()
    joint = _with_paths(_jobs(preset, overrides, tmp_path / "joint", seeds, grid, joined=True), tmp_path / "joint")
    params["joint"] = dict(trained_params)
    return separate, joint, params


@pytest.mark.slow
def test_prompt_tuning_seeds_and_grid_points_joined_equal_separate_jobs(tmp_path, trained_params):
    """Prompt Tuning on FewGLUE RTE: seeds 42/43 x learning rates 3e-2/1e-2 (grid points) in one job equal a job
    per seed whose grid points train one after another; the saved prompts too."""
    preset, overrides = PROMPT_TUNING
    separate, joint, params = _both(tmp_path, trained_params, preset, overrides, [42, 43], grid=[3e-2, 1e-2])
    assert len(separate) == 4
    assert_same_records(separate, joint, tmp_path / "sep", tmp_path / "joint", params)
    for name, rec in separate.items():  # the prompt kept beside the record
        from bench.methods.prompt_store import read_prompt

        sep = read_prompt(tmp_path / "sep" / rec["path_rel"], rec)
        got = read_prompt(tmp_path / "joint" / joint[name]["path_rel"], joint[name])
        assert rel_norm(sep, got) <= 1e-5, name
    steps = {rec["extra"]["fit"]["best_step"] for rec in separate.values()}
    assert all(rec["extra"]["fit"]["steps"] == 6 for rec in separate.values()) and steps <= {0, 2, 4, 6}


@pytest.mark.slow
def test_ptuning_seeds_joined_equal_separate_jobs(tmp_path, trained_params):
    """P-Tuning (frozen BERT, LSTM encoder, backbone dropout on) on SuperGLUE RTE: seeds 1/2 in one job."""
    preset, overrides = PTUNING
    separate, joint, params = _both(tmp_path, trained_params, preset, overrides, [1, 2])
    assert len(separate) == 2
    assert_same_records(separate, joint, tmp_path / "sep", tmp_path / "joint", params)


def test_a_member_that_fails_leaves_the_others_records_and_its_own_failure(tmp_path, monkeypatch):
    from bench.methods.prompt_tuning import PromptTuning

    real = PromptTuning.setup

    def setup(self, backbone):
        if torch.initial_seed() == 43:
            raise RuntimeError("boom on seed 43")
        return real(self, backbone)

    monkeypatch.setattr(PromptTuning, "setup", setup)
    preset, overrides = PROMPT_TUNING
    with pytest.raises(JobFailed, match=r"1 of 3 runs failed .*seed43"):
        _jobs(preset, overrides, tmp_path, [42, 43, 44], None, joined=True)
    records = {p.name: load_record(p) for p in (tmp_path / "runs").rglob("*.json")}
    assert sorted(r["config"]["seed"] for r in records.values()) == [42, 44]
    assert all(r["extra"]["joint"]["members"] == 2 for r in records.values())
    failed = list((tmp_path / "failed").glob("*seed43*.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["message"] == "boom on seed 43"


def test_joint_training_that_fails_trains_every_run_alone(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr("bench.superglue.joint_runner.fit_jointly", broken)
    preset, overrides = PROMPT_TUNING
    records = _jobs(preset, overrides, tmp_path, [42, 43], None, joined=True)
    assert len(records) == 2 and all("joint" not in r["extra"] for r in records.values())


@pytest.mark.slow
def test_study_planner_joins_exactly_the_joinable_jobs(tmp_path):
    jobs = {(p, m, s) for p, m in [("fewglue_prompt_tuning_rte", "tiny-bert"), ("sgv2_ptuning_rte", "tiny-bert"),
                                   ("fewglue_prompt_tuning_rte", "tiny-gpt2"), ("fewglue_ptuning_rte", "tiny-bert"),
                                   ("fewglue_clsft_rte", "tiny-bert"), ("fewglue_pet_rte", "tiny-bert"),
                                   ("sgv2_prompt_tuning_rte", "tiny-bert"), ("fewglue_prompt_tuning_rte", "tiny-t5"),
                                   ("lama34k_ptuning", "tiny-bert")] for s in (42, 43, 44)}
    jobs.add(("fewglue_prompt_tuning_cb", "tiny-bert", 42))
    overrides = [f"paths.results_dir={tmp_path}", "hydra/launcher=local"]
    with hydra_context():
        plan = plan_joins(jobs, overrides, expand_overrides)
    assert sorted(plan.joined) == [("fewglue_prompt_tuning_rte", "tiny-bert", [42, 43, 44]),
                                   ("fewglue_prompt_tuning_rte", "tiny-gpt2", [42, 43, 44]),
                                   ("sgv2_ptuning_rte", "tiny-bert", [42, 43, 44])]
    why = {(p, m): r for (p, m, _), r in plan.apart.items()}
    assert why == {
        ("fewglue_ptuning_rte", "tiny-bert"): "method ptuning tunes the backbone (each run needs its own weights)",
        ("fewglue_clsft_rte", "tiny-bert"): "method finetune is not a soft prompt on a frozen backbone "
                                            "(P-Tuning and Prompt Tuning join)",
        ("fewglue_pet_rte", "tiny-bert"): "PET's pattern-run settings (trainer.pet_unlabeled_logits, ipet_generation "
                                          "or aux_mlm_weight)",
        ("sgv2_prompt_tuning_rte", "tiny-bert"): "method prompt_classifier is not a soft prompt on a frozen backbone "
                                                 "(P-Tuning and Prompt Tuning join)",
        ("fewglue_prompt_tuning_rte", "tiny-t5"): "backbone family 'seq2seq' (seq2seq decoders are not joined)",
        ("lama34k_ptuning", "tiny-bert"): "task runner bench.lama.runner.run_lama (only SuperGLUE / FewGLUE "
                                          "classification runs join; LAMA joins relations inside a run)",
        ("fewglue_prompt_tuning_cb", "tiny-bert"): "one seed to run"}
    assert len(plan.apart) == 6 * 3 + 1
    # Hydra multiruns (presets x models) that hold joined jobs only: tiny-gpt2 has one joined preset, tiny-bert two
    assert sorted(plan.launches()) == [(["fewglue_prompt_tuning_rte"], ["tiny-gpt2"], [42], ["joint_seeds=[42,43,44]"]),
                                       (["fewglue_prompt_tuning_rte", "sgv2_ptuning_rte"], ["tiny-bert"], [42],
                                        ["joint_seeds=[42,43,44]"])]
    # off: the study's --no-join, or trainer.joint=off on the command line
    with hydra_context():
        assert plan_joins(jobs, overrides, expand_overrides, enabled=False).joined == []
        some = {j for j in jobs if j[0] == "sgv2_ptuning_rte"}
        off = plan_joins(some, [*overrides, "trainer.joint=off"], expand_overrides)
    assert off.joined == [] and off.apart == {j: "trainer.joint=off" for j in some}


def test_joint_seeds_plan_the_runs_of_the_separate_jobs(tmp_path):
    """``seed=42 joint_seeds=[42,43,44]`` (what the study launches) plans the records the three seed jobs would
    write, under the same names; a seed list without the job's seed is refused."""
    from bench.checks import validate_config
    from bench.errors import ConfigError
    from bench.job import plan_job

    preset, overrides = PROMPT_TUNING
    base = [*overrides, f"paths.results_dir={tmp_path}"]
    with hydra_context():
        joined = compose_job(preset, "tiny-bert", [*base, "seed=42", "joint_seeds=[42,43,44]"])
        validate_config(joined)
        alone = [plan_job(compose_job(preset, "tiny-bert", [*base, f"seed={s}"]), preset)[0] for s in (42, 43, 44)]
        bad = compose_job(preset, "tiny-bert", [*base, "seed=41", "joint_seeds=[42,43]"])
    runs = plan_job(joined, preset)
    assert [(r.spec.name, r.path) for r in runs] == [(r.spec.name, r.path) for r in alone]
    assert [r.cfg.seed for r in runs] == [42, 43, 44] and all(r.cfg.joint_seeds is None for r in runs)
    with pytest.raises(ConfigError, match=r"joint_seeds=\[42, 43\] must list distinct seeds, seed=41 among them"):
        plan_job(bad, preset)
