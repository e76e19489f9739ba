"""Studies in stages and inputs by exact identity (issue 26, parts 1-2): a consumer (PET's distillation, iPET)
resolves every pattern x seed run it reads by name and config hash, refuses before weights load when one is
missing, failed or only present under another config, and a study runs one wave per stage."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.inputs import InputsError, needed_runs, refusal
from bench.job import plan_job, run_job
from bench.paths import REPO_ROOT
from bench.records import load_record
from bench.study import compose_job, hydra_context, job_groups, load_study, stages

SMOKE = ["debug=fewglue_smoke", "device=cpu"]


def _fake_record(path: Path, config: dict | None = None) -> None:
    """A finished record at a planned path (its spec hash is the name's last part)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.stem
    path.write_text(json.dumps({"name": name, "status": "finished", "metrics": {}, "config": config or {},
                                "spec": {"config_hash": name.rsplit("__", 1)[-1], "method": "pet"}}))


def test_fewglue_presets_fall_into_the_stages_their_needs_give(tmp_path):
    presets = load_study("fewglue")["presets"]
    with hydra_context():
        needs = {p: list(compose_job(p, "tiny-albert", [f"paths.results_dir={tmp_path}"]).needs.presets)
                 for p in presets}
    assert needs["fewglue_pet_distill_wic"] == ["fewglue_pet_wic"]
    assert needs["fewglue_ipet_g2_copa"] == ["fewglue_ipet_g1_copa"]
    assert needs["fewglue_ipet_distill_multirc"] == ["fewglue_ipet_g2_multirc"]
    waves = stages(presets, needs)
    tasks = ("copa", "multirc", "wic")
    assert waves[1] == [f"fewglue_pet_distill_{t}" for t in tasks] + [f"fewglue_ipet_g1_{t}" for t in tasks]
    assert waves[2] == [f"fewglue_ipet_g2_{t}" for t in tasks]
    assert waves[3] == [f"fewglue_ipet_distill_{t}" for t in tasks]
    assert len(waves) == 4 and len(waves[0]) == len(presets) - 12 and "fewglue_pet_copa" in waves[0]
    # a needed preset outside the chosen subset is no stage (its runs must exist already)
    assert stages(["fewglue_pet_distill_copa"], needs) == [["fewglue_pet_distill_copa"]]
    with pytest.raises(Exception, match="cycle"):
        stages(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_jobs_group_into_few_multiruns():
    full = {(p, m, s) for p in ("x", "y") for m in ("m1", "m2") for s in (1, 2)}
    assert job_groups(full, ["x", "y"], ["m1", "m2"]) == [(["x", "y"], ["m1", "m2"], [1, 2])]
    held = full - {("y", "m2", 2)}  # one job held back: m2's jobs go per preset, m1's stay one product
    assert job_groups(held, ["x", "y"], ["m1", "m2"]) == [(["x", "y"], ["m1"], [1, 2]), (["x"], ["m2"], [1, 2]),
                                                          (["y"], ["m2"], [1])]


def test_distillation_names_exactly_patterns_x_seeds_and_refuses_before_weights_load(tmp_path, monkeypatch):
    """COPA has 2 PET patterns, the study 3 seeds: 6 inputs. One missing, one failed, one only under another
    trainer.lr: the job refuses naming each of them and the command, and no weights are loaded; a PET record of
    another lr in the same folder is never among the inputs."""
    common = [*SMOKE, f"paths.results_dir={tmp_path}"]
    with hydra_context():
        consumer = compose_job("fewglue_pet_distill_copa", "tiny-albert", [*common, "seed=42"])
        runs = needed_runs(consumer, plan_job, [*common, "seed=42"])
        assert [(r.rank, r.seed) for r in runs] == [(0, 42), (1, 42), (0, 43), (1, 43), (0, 44), (1, 44)]
        assert {r.state for r in runs} == {"missing"} and len({r.name for r in runs}) == 6
        assert all(r.name.startswith("copa-fewglue__tiny-albert__pet__pet_copa-r") for r in runs)
        other_lr = plan_job(compose_job("fewglue_pet_copa", "tiny-albert", [*common, "seed=44", "trainer.lr=1e-3"]),
                            "fewglue_pet_copa")
    by_key = {(r.rank, r.seed): r for r in runs}
    for key in [(0, 42), (1, 42), (0, 43), (1, 43)]:
        _fake_record(by_key[key].path)
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / f"{by_key[(1, 44)].name}.20260101T000000.json").write_text(json.dumps({"message": "x"}))
    _fake_record(other_lr[0].path)  # (0, 44) exists only with trainer.lr=1e-3
    assert other_lr[0].path.parent == by_key[(0, 44)].path.parent and other_lr[0].path != by_key[(0, 44)].path
    with hydra_context():
        states = {(r.rank, r.seed): r.state for r in needed_runs(consumer, plan_job, [*common, "seed=42"])}
    assert states == {(0, 42): "done", (1, 42): "done", (0, 43): "done", (1, 43): "done",
                      (0, 44): "other config", (1, 44): "failed"}
    monkeypatch.setattr("bench.backbones.loading.load_backbone", lambda *a, **k: pytest.fail("weights loaded"))
    with hydra_context():
        cfg = compose_job("fewglue_pet_distill_copa", "tiny-albert", [*common, "seed=42"])
        with pytest.raises(InputsError) as err:
            run_job(cfg, "fewglue_pet_distill_copa")
    text = str(err.value)
    assert "2 of 6 input runs" in text and by_key[(0, 44)].name in text and by_key[(1, 44)].name in text
    assert other_lr[0].path.name in text  # where the other config's run is
    assert "python -m bench.run -m experiment=fewglue_pet_copa model=tiny-albert ranks=preset seed=44" in text
    assert by_key[(0, 42)].name not in text
    failed = list((tmp_path / "failed").glob("copa-fewglue__tiny-albert__finetune__*.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["error_type"] == "InputsError"
    # all six present (the lr run still beside them): the inputs are exactly the six, by name and checksum
    _fake_record(by_key[(0, 44)].path)
    _fake_record(by_key[(1, 44)].path)
    with hydra_context():
        runs = needed_runs(consumer, plan_job, [*common, "seed=42"])
    assert refusal(runs, consumer, [*common, "seed=42"]) is None
    assert sorted(r.path for r in runs) == sorted(r.path for r in by_key.values())
    assert other_lr[0].path not in {r.path for r in runs}


def test_a_missing_input_alone_is_named_with_its_state(tmp_path):
    common = [*SMOKE, f"paths.results_dir={tmp_path}"]
    with hydra_context():
        consumer = compose_job("fewglue_ipet_g1_wic", "tiny-albert", [*common, "seed=43", "needs.seeds=[43]"])
        runs = needed_runs(consumer, plan_job, [*common, "seed=43", "needs.seeds=[43]"])
    assert len(runs) == 3 and {r.seed for r in runs} == {43}  # WiC: 3 PET patterns, the one seed asked for
    for r in runs[1:]:
        _fake_record(r.path)
    with hydra_context():
        runs = needed_runs(consumer, plan_job, [*common, "seed=43", "needs.seeds=[43]"])
    text = refusal(runs, consumer, [*common, "seed=43", "needs.seeds=[43]"])
    assert text.splitlines()[1] == f"  missing: {runs[0].name}" and "1 of 3 input runs" in text


@pytest.mark.slow
def test_study_stages_on_submitits_local_executor_give_the_basic_launchers_records(tmp_path):
    """PET's COPA pattern runs then its distillation, through the basic launcher and through submitit's
    local executor, one seed (``--seeds 42``): the same record names and metrics, and the distilled record lists
    the 2 pattern runs of that seed."""
    common = ["--models", "tiny-albert", "--presets", "fewglue_pet_copa,fewglue_pet_distill_copa", "--seeds", "42",
              "device=cpu"]
    out = {}
    for launcher in ("basic", "submitit"):
        extra = ["hydra.launcher.timeout_min=30"] if launcher == "submitit" else []
        proc = subprocess.run([sys.executable, "-m", "bench.study", "run", "fewglue", "--launcher", launcher, *common,
                               *extra, f"paths.results_dir={tmp_path / launcher}"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=1800, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "stage 2 of 2" in proc.stdout and "3 run now" in proc.stdout
        out[launcher] = {p.name: load_record(p) for p in sorted((tmp_path / launcher / "runs").rglob("*.json"))}
    assert {k: v["metrics"] for k, v in out["basic"].items()} == {k: v["metrics"] for k, v in out["submitit"].items()}
    distilled = [r for r in out["submitit"].values() if r["spec"]["method"] == "finetune"]
    patterns = sorted(n.removesuffix(".json") for n, r in out["submitit"].items() if r["spec"]["method"] == "pet")
    assert len(distilled) == 1 and len(patterns) == 2
    assert {r["spec"]["seed"] for r in out["submitit"].values()} == {42}
    for record in distilled:
        assert sorted(i["name"] for i in record["inputs"]) == patterns
        assert sorted(record["extra"]["distillation"]["pattern_runs"]) == patterns


def test_a_failed_input_holds_back_only_its_dependants(monkeypatch, capsys):
    """Wave 1: PET's COPA runs for two models; tiny-bert's seed-43 pattern run fails. Wave 2 launches the
    distillation for tiny-albert only and names the held-back tiny-bert jobs; the study exits 1."""
    import bench.study as study

    pet, dist = "fewglue_pet_copa", "fewglue_pet_distill_copa"
    models, seeds = ["tiny-albert", "tiny-bert"], [42, 43, 44]
    done: set = set()
    launched: list = []

    def plan(presets, models_, seeds_, overrides):
        out = study.StudyPlan(needs={pet: [], dist: [pet]})
        for preset in presets:
            for model in models_:
                for seed in seeds_:
                    name = f"{preset}.{model}.{seed}"
                    pending = []
                    if preset == dist:
                        pending = [f"failed: {pet}.{model}.{s}" for s in seeds_ if f"{pet}.{model}.{s}" not in done]
                    state = "done" if name in done else ("failed" if name == f"{pet}.tiny-bert.43" else "missing")
                    out.runs.append(study.RunState(preset, model, seed, None, name, state, "", pending))
        return out

    def launch(presets, models_, seeds_, launcher, overrides):
        launched.append((list(presets), list(models_), list(seeds_)))
        assert "needs.seeds=[42,43,44]" in overrides
        for p in presets:
            for m in models_:
                for s in seeds_:
                    if (p, m, s) != (pet, "tiny-bert", 43):
                        done.add(f"{p}.{m}.{s}")
        return 1 if (pet, "tiny-bert", 43) in {(p, m, s) for p in presets for m in models_ for s in seeds_} else 0

    monkeypatch.setattr(study, "plan_study", plan)
    monkeypatch.setattr(study, "launch", launch)
    code = study.main(["run", "fewglue", "--models", ",".join(models), "--presets", f"{pet},{dist}",
                       "--launcher", "local"])
    out = capsys.readouterr().out
    assert code == 1
    assert launched == [([pet], models, seeds), ([dist], ["tiny-albert"], seeds)]
    assert "stage 1 of 2" in out and "stage 2 of 2" in out
    for seed in seeds:
        assert f"{dist} x tiny-bert seed{seed}: not started, 1 input runs not finished: failed: {pet}.tiny-bert.43" in out
    assert f"{dist} x tiny-albert" not in out.split("runs held back")[1]


def test_seeds_option_replaces_the_studys_seeds_for_the_jobs_and_the_later_stages(monkeypatch, capsys):
    import bench.study as study

    seen = []

    def plan(presets, models_, seeds_, overrides):
        seen.append((list(seeds_), list(overrides)))
        return study.StudyPlan()

    monkeypatch.setattr(study, "plan_study", plan)
    assert study.main(["status", "fewglue", "--models", "tiny-albert", "--presets", "fewglue_pet_copa",
                       "--seeds", "7,42"]) == 0
    assert seen[0][0] == [7, 42] and "needs.seeds=[7,42]" in seen[0][1]
    seen.clear()
    assert study.main(["status", "fewglue", "--models", "tiny-albert", "--presets", "fewglue_pet_copa"]) == 0
    assert seen[0][0] == load_study("fewglue").get("debug_seeds", load_study("fewglue")["seeds"]) != [7, 42]
    assert study.main(["status", "fewglue", "--models", "tiny-albert", "--seeds", "42,x"]) == 2
    assert "--seeds '42,x': give comma-separated integers" in capsys.readouterr().err


def test_launcher_settings_are_not_composed_into_the_jobs(tmp_path):
    """`ARGS="hydra.launcher.timeout_min=600"` (README's SLURM example) goes to the launcher, not to each job's config."""
    from bench.study import plan_study

    with hydra_context():
        plan = plan_study(["lmbff_sst2_zeroshot"], ["tiny-roberta"], [13],
                          ["hydra.launcher.timeout_min=60", f"paths.results_dir={tmp_path}", "debug=lmbff_smoke"])
    assert plan.runs and {r.state for r in plan.runs} == {"missing"}
