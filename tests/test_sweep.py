"""The resumable sweep: presets expand as documented, finished specs are skipped, crashes are kept apart,
an interrupted sweep loses no finished run, and a reused backbone changes nothing."""

import json
from pathlib import Path

import pytest
import torch

import bench.run
from bench.errors import DataError
from bench.records import is_finished, load_record
from bench.sweep import BackboneCache, hydra_context, main, plan, run_plan, study_presets, tunes_backbone


@pytest.fixture(scope="module")
def lama_data():
    from bench.lama.data import relation_ids

    try:
        return relation_ids()
    except DataError as err:
        pytest.skip(f"real LAMA data is not prepared (run `python -m data_prep lama`): {err}")


def _overrides(tmp_path: Path, relations: str = "[P17,P19]") -> list[str]:
    return ["debug=smoke", "device=cpu", f"paths.results_dir={tmp_path}", f"task.relations={relations}",
            "task.limit_per_relation=4"]


def test_lama_study_expands_presets_models_and_ranks(lama_data, tmp_path):
    presets = study_presets("lama")
    assert {"lama34k_manual", "lama34k_lpaqa", "lama34k_autoprompt_bert", "lama34k_ptuning", "lama29k_manual",
            "lama29k_lm_finetune", "lama29k_lm_finetune_manual", "lama29k_ptuning", "lama_p17_sensitivity",
            "lama34k_pararel", "lama34k_lpaqa_paraphrase"} <= set(presets)
    assert "lama34k_ptuning_manual" not in presets and study_presets("lama_options") == ["lama34k_ptuning_manual"]
    with hydra_context():
        sweep = plan(presets, ["tiny-bert", "tiny-gpt2"], [f"paths.results_dir={tmp_path}"])
    assert sweep.unavailable == []
    names = [s.spec.name for s in sweep.specs]
    assert len(names) == len(set(names))
    by_preset = {}
    for s in sweep.specs:
        by_preset.setdefault((s.preset, s.model), []).append(s.rank)
    assert by_preset[("lama_p17_sensitivity", "tiny-bert")] == [0, 1, 2, 3]  # Table 1's four prompts
    assert by_preset[("lama34k_pararel", "tiny-gpt2")] == list(range(20))
    assert by_preset[("lama34k_lpaqa_paraphrase", "tiny-bert")] == list(range(30))
    assert ("lama34k_autoprompt_bert", "tiny-gpt2") not in by_preset
    assert ("lama34k_autoprompt_bert", "tiny-gpt2", "only for bert models (this is gpt2)") in sweep.not_applicable
    # model by model, frozen-backbone specs first (they share one loaded backbone)
    models = [s.model for s in sweep.specs]
    assert models == sorted(models, key=["tiny-bert", "tiny-gpt2"].index)
    tuned = [tunes_backbone(s.cfg) for s in sweep.specs if s.model == "tiny-bert"]
    assert tuned == sorted(tuned) and any(tuned)
    # P-Tuning's recipe as the reference, with debug=smoke still able to shorten it
    pt = next(s.cfg for s in sweep.specs if s.preset == "lama34k_ptuning" and s.model == "tiny-gpt2")
    assert (pt.trainer.optimizer, pt.trainer.lr, pt.trainer.weight_decay, pt.trainer.gamma) == ("adam", 1e-5, 5e-4, 0.98)
    assert (pt.trainer.batch_size, pt.trainer.max_epochs, pt.trainer.early_stopping_patience) == (8, 100, 20)
    assert list(pt.template.shape.clm) == [3, 3, 0] and pt.template.order == "paper" and pt.seed == 34
    assert pt.trainer.grad_clip is None and pt.trainer.prefer_later_on_tie
    assert not pt.method.component.tunes_backbone
    ft = next(s for s in sweep.specs if s.preset == "lama29k_lm_finetune")
    assert ft.spec.name == "lama-lama29k__tiny-bert__lm_finetune__bare__seed34" and tunes_backbone(ft.cfg)


def test_sweep_skips_finished_keeps_crashes_apart_and_exits_nonzero(lama_data, tmp_path, monkeypatch, capsys):
    real = bench.run._run_task

    def flaky(cfg, backbone, method):
        if cfg["template"].get("rank") == 2:
            raise RuntimeError("boom on rank 2")
        return real(cfg, backbone, method)

    monkeypatch.setattr(bench.run, "_run_task", flaky)
    args = ["--presets", "lama_p17_sensitivity", "--models", "tiny-bert", *_overrides(tmp_path, "[P17]")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "3 run, 0 already finished, 1 failed" in out
    assert "lama-lama34k__tiny-bert__manual__p17_sensitivity-r2__seed34__smoke: RuntimeError: boom on rank 2" in out
    runs = sorted(p.name for p in (tmp_path / "runs" / "lama").glob("*.json"))
    assert len(runs) == 3 and not any("-r2" in name for name in runs)
    failed = list((tmp_path / "failed").glob("*-r2__seed34__smoke.*.json"))
    assert len(failed) == 1 and "boom on rank 2" in json.loads(failed[0].read_text())["error"]
    # rerun without the fault: only the crashed spec runs
    monkeypatch.setattr(bench.run, "_run_task", real)
    assert main(args) == 0
    assert "1 run, 3 already finished, 0 failed" in capsys.readouterr().out


def test_interrupted_sweep_loses_no_finished_run(lama_data, tmp_path, monkeypatch):
    real = bench.run._run_task
    calls = []

    def interrupted(cfg, backbone, method):
        calls.append(cfg["template"]["name"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of the second spec
        return real(cfg, backbone, method)

    monkeypatch.setattr(bench.run, "_run_task", interrupted)
    with hydra_context():
        sweep = plan(["lama34k_manual", "lama34k_lpaqa", "lama34k_autoprompt_bert"], ["tiny-bert"], _overrides(tmp_path))
        with pytest.raises(KeyboardInterrupt):
            run_plan(sweep)
        done = [s for s in sweep.specs if is_finished(s.path)]
        assert [s.preset for s in done] == ["lama34k_manual"]
        assert load_record(done[0].path)["metrics"]["test"]["overall"]["n_relations"] == 2
        assert not list((tmp_path / "runs").rglob("*.tmp*"))  # no half-written record
        monkeypatch.setattr(bench.run, "_run_task", real)
        result = run_plan(sweep)
    assert result.skipped == [done[0].spec.name] and len(result.ran) == 2 and not result.failed


def test_reused_backbone_gives_the_same_record_and_prompt_encoder(lama_data, tmp_path):
    """A frozen-backbone spec run on a cached backbone equals the same spec run on a fresh load."""
    records, artifacts = {}, {}
    for reuse in (True, False):
        results = tmp_path / ("reuse" if reuse else "fresh")
        with hydra_context():
            sweep = plan(["lama34k_manual", "lama34k_ptuning"], ["tiny-bert"], _overrides(results, "[P17]"))
            result = run_plan(sweep, reuse=reuse)
        assert result.backbone_reuses == (1 if reuse else 0) and not result.failed
        records[reuse] = [load_record(s.path)["metrics"] for s in sweep.specs]
        artifacts[reuse] = torch.load(next((results / "artifacts").rglob("P17.pt")), weights_only=True)
    assert records[True] == records[False]
    saved = {reuse: artifacts[reuse]["modules"]["prompt_encoder"] for reuse in (True, False)}
    assert saved[True].keys() == saved[False].keys()
    assert all(torch.equal(saved[True][k], saved[False][k]) for k in saved[True])


def test_backbone_cache_restores_the_random_state_a_fresh_load_leaves():
    loads = []

    def loader(name):
        loads.append(name)
        torch.rand(3)  # loading draws random numbers (random init before the weights are read)
        return object()

    cache = BackboneCache(loader)
    cache.allow = True
    torch.manual_seed(34)
    first = cache("m")
    expected = torch.rand(1)
    torch.manual_seed(34)
    assert cache("m") is first and torch.equal(torch.rand(1), expected) and loads == ["m"]
    torch.manual_seed(35)  # another seed: the state after loading cannot be replayed, so it loads anew
    assert cache("m") is not first and len(loads) == 2
    cache.allow = False  # a spec that tunes the backbone never gets the cached one
    assert cache("m") is not first and len(loads) == 3
