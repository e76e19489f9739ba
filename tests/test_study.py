"""Studies through Hydra's multirun: jobs expand as documented, finished runs are skipped before weights load,
crashes are kept apart and named, every config point gets its own record, and launchers give the same records."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import bench.job
from bench.errors import ConfigError
from bench.identity import config_hash
from bench.job import JobFailed, run_job
from bench.paths import REPO_ROOT
from bench.records import is_finished, load_record
from bench.study import compose_job, hydra_context, main, plan_study

PY = sys.executable




def _overrides(results: Path, relations: str = "[P17,P19]") -> list[str]:
    return ["debug=smoke", "device=cpu", f"paths.results_dir={results}", f"task.relations={relations}",
            "task.limit_per_relation=4"]


def _study(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "bench.study", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _records(results: Path) -> dict[str, dict]:
    return {p.name: load_record(p)["metrics"] for p in sorted((results / "runs").rglob("*.json"))}


def test_lama_study_jobs_expand_their_ranks(lama_data, tmp_path):
    from bench.study import load_study

    presets = load_study("lama")["presets"]
    with hydra_context():
        plan = plan_study(presets, ["tiny-bert", "tiny-gpt2"], None, [f"paths.results_dir={tmp_path}"])
    names = [r.name for r in plan.runs if r.state != "n/a"]
    assert len(names) == len(set(names)) and plan.count("missing") == len(names)
    ranks: dict = {}
    for r in plan.runs:
        ranks.setdefault((r.preset, r.model), []).append(r.rank)
    assert ranks[("lama_p17_sensitivity", "tiny-bert")] == [0, 1, 2, 3]  # Table 1's four prompts, one job
    assert ranks[("lama34k_pararel", "tiny-gpt2")] == list(range(20))
    assert ranks[("lama34k_lpaqa_paraphrase", "tiny-bert")] == list(range(30))
    na = {(r.preset, r.model): r.detail for r in plan.runs if r.state == "n/a"}
    assert na[("lama34k_autoprompt_bert", "tiny-gpt2")] == "only for bert models (this is gpt2)"
    # P-Tuning's recipe as the reference, with debug=smoke still able to shorten it
    with hydra_context():
        pt = compose_job("lama34k_ptuning", "tiny-gpt2", [])
    assert (pt.trainer.optimizer, pt.trainer.lr, pt.trainer.weight_decay, pt.trainer.gamma) == ("adam", 1e-5, 5e-4, 0.98)
    assert (pt.trainer.batch_size, pt.trainer.max_epochs, pt.trainer.early_stopping_patience) == (8, 100, 20)
    assert list(pt.template.shape.clm) == [3, 3, 0] and pt.template.order == "code" and pt.seed == 34
    assert pt.task.protocol == "reference"  # the released code's protocol, which produced the published numbers
    with hydra_context():
        paper = compose_job("lama34k_ptuning_paper", "tiny-gpt2", [])
    assert (paper.task.protocol, paper.template.order, paper.trainer.lr) == ("paper", "paper", 1e-5)


def test_config_hash_covers_what_changes_a_result_only():
    base = {"task": {"name": "cb"}, "trainer": {"lr": 1e-4}, "paths": {"results_dir": "/a"}, "force": False,
            "model": {"name": "m", "path": None}, "seed": 1}
    moved = {**base, "paths": {"results_dir": "/b"}, "force": True, "model": {"name": "m", "path": "/w"}}
    assert config_hash(moved) == config_hash(base)
    assert config_hash({**base, "trainer": {"lr": 1e-3}}) != config_hash(base)
    assert config_hash({**base, "seed": 2}) != config_hash(base)


def test_a_crashed_rank_is_kept_apart_and_the_job_goes_on(lama_data, tmp_path, monkeypatch):
    real = bench.job.get_method

    def flaky_get_method(path):
        runner = real(path)

        def run(cfg, backbone, method):
            if cfg["template"].get("rank") == 2:
                raise RuntimeError("boom on rank 2")
            return runner(cfg, backbone, method)
        return run

    monkeypatch.setattr(bench.job, "get_method", flaky_get_method)
    with hydra_context():
        cfg = compose_job("lama_p17_sensitivity", "tiny-bert", _overrides(tmp_path, "[P17]"))
        with pytest.raises(JobFailed, match=r"1 of 4 runs failed .*p17_sensitivity-r2__seed34__smoke"):
            run_job(cfg, "lama_p17_sensitivity")
    runs = sorted(p.name for p in (tmp_path / "runs" / "lama").glob("*.json"))
    assert len(runs) == 3 and not any("-r2__" in name for name in runs)
    failed = list((tmp_path / "failed").glob("*-r2__seed34__smoke__*.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["message"] == "boom on rank 2"
    # the rerun without the fault does the crashed rank only; a finished job loads no weights
    monkeypatch.setattr(bench.job, "get_method", real)
    with hydra_context():
        outcome = run_job(cfg, "lama_p17_sensitivity")
        assert len(outcome.ran) == 1 and len(outcome.skipped) == 3
        monkeypatch.setattr("bench.backbones.loading.load_backbone", lambda *a, **k: pytest.fail("weights loaded"))
        assert sorted(run_job(cfg, "lama_p17_sensitivity").skipped) == sorted(outcome.skipped + outcome.ran)


def test_one_backbone_for_all_ranks_gives_the_records_of_separate_runs(lama_data, tmp_path):
    """A job reuses its loaded backbone across ranks; each rank alone (a fresh load) gives the same metrics."""
    with hydra_context():
        run_job(compose_job("lama_p17_sensitivity", "tiny-gpt2", _overrides(tmp_path / "job", "[P17]")))
        for rank in range(4):
            cfg = compose_job("lama_p17_sensitivity", "tiny-gpt2",
                              [*_overrides(tmp_path / "single", "[P17]"), "ranks=null", f"template.rank={rank}"])
            run_job(cfg)
    assert _records(tmp_path / "job") == _records(tmp_path / "single") and len(_records(tmp_path / "job")) == 4


def test_study_names_that_match_nothing_exit_2_with_the_closest(capsys):
    assert main(["run", "lama", "--models", "tiny-robera"]) == 2
    assert "did you mean tiny-roberta" in capsys.readouterr().err
    assert main(["status", "lamma"]) == 2
    assert "did you mean lama" in capsys.readouterr().err
    assert main(["run", "lama", "--presets", "lama34k_manul"]) == 2
    assert "did you mean lama34k_manual" in capsys.readouterr().err


@pytest.mark.slow
def test_study_runs_in_process_and_in_a_worker_pool_with_the_same_records(lama_data, tmp_path):
    presets = "lama34k_manual,lama_p17_sensitivity,lama34k_ptuning"
    common = ["--models", "tiny-bert,tiny-gpt2", "--presets", presets]
    basic = _study("run", "lama", *common, *_overrides(tmp_path / "basic"))
    assert basic.returncode == 0, basic.stdout[-3000:] + basic.stderr[-3000:]
    assert "study lama: 12 run now, 0 finished before, 0 failed" in basic.stdout
    pool = _study("run", "lama", "--launcher", "local", *common, *_overrides(tmp_path / "pool"))
    assert pool.returncode == 0, pool.stdout[-3000:] + pool.stderr[-3000:]
    assert "hydra/launcher=local" in pool.stdout
    assert _records(tmp_path / "basic") == _records(tmp_path / "pool") and len(_records(tmp_path / "pool")) == 12
    again = _study("run", "lama", *common, *_overrides(tmp_path / "pool"))
    assert again.returncode == 0 and "0 run now, 12 finished before" in again.stdout
    assert "launching" not in again.stdout  # the rerun launches nothing (no timed assertion: speed is not tested)
    status = _study("status", "lama", *common, *_overrides(tmp_path / "pool"), "--quiet")
    assert "12 runs: 12 done, 0 missing, 0 failed, 0 not applicable" in status.stdout


@pytest.mark.slow
def test_failed_jobs_do_not_stop_the_others_and_are_named(lama_data, tmp_path):
    """bert-base-cased has no weights offline: its runs fail, tiny-bert's finish, the study exits 1."""
    out = _study("run", "lama", "--models", "tiny-bert,bert-base-cased", "--presets", "lama34k_manual",
                 *_overrides(tmp_path), "debug=smoke")
    assert out.returncode == 1
    assert "1 run now, 0 finished before, 1 failed" in out.stdout
    assert "missing weights (1 model(s)); the first error in full:" in out.stdout
    assert "Provide them in one of two ways" in out.stdout and "bert-base-cased: weights missing" in out.stdout
    status = _study("status", "lama", "--models", "tiny-bert,bert-base-cased", "--presets", "lama34k_manual",
                    *_overrides(tmp_path), "debug=smoke")
    assert "2 runs: 1 done, 0 missing, 1 failed" in status.stdout
    assert "MissingWeightsError" in status.stdout


@pytest.mark.slow
def test_kill_9_during_a_study_loses_no_finished_record(lama_data, tmp_path):
    args = [PY, "-m", "bench.study", "run", "lama", "--models", "tiny-gpt2", "--presets", "lama34k_pararel",
            *_overrides(tmp_path)]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    runs = tmp_path / "runs" / "lama"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(runs.glob("*.json"))) < 3:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = {p.name: load_record(p) for p in runs.glob("*.json")}  # every file there is a whole record
    total = 13  # ParaRel ranks that have a P17 or P19 prompt
    assert 3 <= len(kept) < total
    again = _study("run", "lama", "--models", "tiny-gpt2", "--presets", "lama34k_pararel", *_overrides(tmp_path))
    assert again.returncode == 0, again.stdout[-2000:]
    assert f"{total - len(kept)} run now, {len(kept)} finished before, 0 failed, 0 missing" in again.stdout
    assert all(load_record(runs / name)["provenance"] == kept[name]["provenance"] for name in kept)


@pytest.mark.slow
def test_a_hyperparameter_multirun_leaves_one_record_per_point(tmp_path):
    """`bench.run -m ... trainer.lr=1e-4,1e-3` leaves two records; status tells them apart by the config."""
    cmd = [PY, "-m", "bench.run", "-m", "task=cb", "model=tiny-albert", "method=pet", "template=pet_cb",
           "debug=smoke", "device=cpu", "trainer.lr=1e-4,1e-3"]  # no paths override: the defaults must resolve
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "runs" / "cb").glob("*.json"))
    assert len(names) == 2 and names[0].rsplit("__", 1)[0] == names[1].rsplit("__", 1)[0]
    lrs = sorted(load_record(tmp_path / "runs" / "cb" / n)["config"]["trainer"]["lr"] for n in names)
    assert lrs == [1e-4, 1e-3]
    status = _study("status", "--results", str(tmp_path))
    assert "2 finished records" in status.stdout
    assert "trainer.lr=0.0001" in status.stdout and "trainer.lr=0.001" in status.stdout


@pytest.mark.slow
def test_submitit_launcher_runs_the_same_jobs_and_slurm_composes(lama_data, tmp_path):
    cmd = [PY, "-m", "bench.run", "-m", "hydra/launcher=submitit", "experiment=lama34k_manual",
           "model=tiny-bert", "ranks=preset", "hydra.launcher.timeout_min=10", *_overrides(tmp_path / "submitit")]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    with hydra_context():
        run_job(compose_job("lama34k_manual", "tiny-bert", _overrides(tmp_path / "inproc")))
    assert _records(tmp_path / "submitit") == _records(tmp_path / "inproc") and _records(tmp_path / "inproc")
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                                       "hydra.launcher.array_parallelism=4"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.array_parallelism) == ("gpu", 1, 4)


def test_unknown_ranks_value_is_refused(lama_data, tmp_path):
    with hydra_context():
        cfg = compose_job("lama34k_manual", "tiny-bert", [*_overrides(tmp_path), "ranks=every"])
        with pytest.raises(ConfigError, match="ranks='every'"):
            run_job(cfg)
    assert not is_finished(tmp_path / "runs")


def test_worker_processes_take_different_gpus(tmp_path):
    """With 2 GPUs, a second process gets the GPU the first does not hold; a process keeps its GPU."""
    from bench.gpu_slots import claim_gpu

    holder = subprocess.Popen([PY, "-c", "import sys, time; from bench.gpu_slots import claim_gpu; "
                               f"print(claim_gpu(2, {str(tmp_path)!r}), flush=True); time.sleep(30)"],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "0"
        assert claim_gpu(2, tmp_path) == 1 and claim_gpu(2, tmp_path) == 1
    finally:
        holder.kill()
        holder.wait()
