"""The LM-BFF automatic search as a study stage (bench.lmbff.auto_stage, auto_inputs): presets, stage order,
the search job on the tiny RoBERTa, and how a stage-2 run takes its split's candidate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.errors import ConfigError
from bench.io_utils import sha256_file
from bench.lmbff.auto_inputs import apply_auto, with_candidate
from bench.lmbff.auto_stage import settings_of
from bench.study import compose_job, hydra_context, load_study, stages

SEARCH = [f"lmbff_auto_{t}_search_{k}" for t in ("sst2", "snli") for k in ("t", "l")]
READERS = [f"lmbff_auto_{t}_{p}" for t in ("sst2", "snli") for p in ("prompt", "demo", "prompt_l")]


def test_search_presets_run_one_stage_before_the_automatic_rows(tmp_path):
    presets = load_study("lmbff")["presets"]
    assert set(SEARCH + READERS) <= set(presets)
    with hydra_context():
        cfgs = {p: compose_job(p, "tiny-roberta", [f"paths.results_dir={tmp_path}"]) for p in presets}
    needs = {p: list((c.get("needs") or {}).get("presets") or []) for p, c in cfgs.items()}
    assert needs["lmbff_auto_sst2_demo"] == ["lmbff_auto_sst2_search_t"]
    assert needs["lmbff_auto_snli_prompt_l"] == ["lmbff_auto_snli_search_l"]
    waves = stages(presets, needs)
    assert len(waves) == 2 and sorted(waves[1]) == sorted(READERS)
    search = cfgs["lmbff_auto_sst2_search_t"]
    assert search.task.runner == "bench.lmbff.auto_stage.run_auto_search"
    assert (search.trainer.lr, search.trainer.batch_size) == (1e-5, 8)  # LM-BFF's fixed re-ranking setting
    assert search.get("sweep").get("grid") is None
    assert dict(cfgs["lmbff_auto_sst2_prompt"].sweep.grid) == dict(cfgs["lmbff_sst2_prompt"].sweep.grid)


def test_small_model_settings_apply_only_to_tiny_and_mini_models():
    raw = {"kind": "templates", "t5_model": "t5-3b", "beam": 100, "rerank": None,
           "small_models": {"prefixes": ["tiny-", "mini-"], "t5_model": "tiny-t5", "beam": 2, "rerank": 2}}
    assert settings_of({"auto_search": raw, "model": {"name": "roberta-large"}}) == \
        {"kind": "templates", "t5_model": "t5-3b", "beam": 100, "rerank": None}
    assert settings_of({"auto_search": raw, "model": {"name": "tiny-roberta"}}) == \
        {"kind": "templates", "t5_model": "tiny-t5", "beam": 2, "rerank": 2, "plumbing_only": True}
    with pytest.raises(ConfigError, match="auto_search.kind"):
        settings_of({"auto_search": {"kind": "both"}, "model": {"name": "x"}})


BASE = {"seed": 13, "template": {"name": "lmbff_auto_t", "kind": "fixed", "rank": 0,
                                 "texts": {0: "{sentence:trunc} It was [MASK]."},
                                 "verbalizer": {"0": "terrible", "1": "great"}, "verbalizers": {}},
        "trainer": {"lr": 1e-5}, "task": {"name": "sst2"}}


def test_a_candidate_changes_only_the_template_or_only_the_label_words():
    templ = with_candidate(BASE, "templates", {"text": "{sentence:trunc} A [MASK] one."})
    assert templ["template"] == {**BASE["template"], "texts": {0: "{sentence:trunc} A [MASK] one."}}
    assert {k: v for k, v in templ.items() if k != "template"} == {k: v for k, v in BASE.items() if k != "template"}
    words = with_candidate(BASE, "labels", {"label_words": {"0": "bad", "1": "fun"}})
    assert words["template"] == {**BASE["template"], "verbalizer": {"0": "bad", "1": "fun"}}
    assert BASE["template"]["verbalizer"] == {"0": "terrible", "1": "great"}  # the input is not changed


def _search_record(tmp_path: Path, seed: int, ranked: list, plumbing: bool) -> dict:
    path = tmp_path / "runs" / "sst2" / f"search_{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    found = {"kind": "templates", "settings": {"plumbing_only": plumbing}, "ranked": ranked, "unusable": [{}]}
    path.write_text(json.dumps({"config": {"seed": seed}, "extra": {"auto_search": found}}))
    return {"name": path.stem, "path": str(path.relative_to(tmp_path)), "sha256": sha256_file(path)}


def test_a_stage_two_run_takes_its_splits_candidate_of_the_asked_rank(tmp_path):
    ranked = [{"text": "{sentence:trunc} Best [MASK]."}, {"text": "{sentence:trunc} Second [MASK]."}]
    refs = [_search_record(tmp_path, 13, ranked, False), _search_record(tmp_path, 21, ranked[::-1], False)]
    cfg = {**BASE, "paths": {"results_dir": str(tmp_path)}, "inputs": refs,
           "template": {**BASE["template"], "auto": {"rank": 1}}}
    out, taken = apply_auto(cfg)
    assert out["template"]["texts"] == {0: "{sentence:trunc} Second [MASK]."}
    assert taken["rank"] == 1 and taken["search_record"] == refs[0]["path"]
    out21, taken21 = apply_auto({**cfg, "seed": 21})  # the other split's own list
    assert out21["template"]["texts"] == {0: "{sentence:trunc} Best [MASK]."} and taken21["search_record"] == refs[1]["path"]
    assert apply_auto(BASE) == (BASE, None)  # no template.auto: nothing read
    with pytest.raises(ConfigError, match="none of rank 2"):
        apply_auto({**cfg, "template": {**cfg["template"], "auto": {"rank": 2, "on_empty": "manual"}}})
    with pytest.raises(ConfigError, match="needs.presets"):
        apply_auto({**cfg, "inputs": []})


def test_the_manual_fallback_is_for_plumbing_searches_only_and_is_recorded(tmp_path):
    cfg = {**BASE, "paths": {"results_dir": str(tmp_path)}, "inputs": [_search_record(tmp_path, 13, [], True)],
           "template": {**BASE["template"], "auto": {"rank": 0, "on_empty": "manual"}}}
    out, taken = apply_auto(cfg)
    assert out["template"] == cfg["template"] and "random-weight" in taken["fallback"]
    cfg["inputs"] = [_search_record(tmp_path, 13, [], False)]
    with pytest.raises(ConfigError, match="usable candidates"):
        apply_auto(cfg)


def test_label_search_job_on_the_tiny_roberta_writes_sorted_candidates(tmp_path, monkeypatch):
    from hydra.utils import instantiate

    from bench.backbones.loading import load_backbone
    from bench.identity import resolved_config
    from bench.lmbff.auto_stage import run_auto_search

    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    torch.set_num_threads(1)
    overrides = [f"paths.results_dir={tmp_path}", "seed=13", "debug=lmbff_smoke", "auto_search.k_likely=3",
                 "auto_search.n_pairs=3", "auto_search.small_models.rerank=2", "trainer.max_steps=1", "device=cpu"]
    with hydra_context():
        cfg = resolved_config(compose_job("lmbff_auto_sst2_search_l", "tiny-roberta", overrides))
    backbone = load_backbone(cfg["model"], device="cpu", dtype=torch.float32, models_dir=cfg["paths"]["models_dir"])
    method = instantiate(cfg["method"]["component"])
    method.setup(backbone)
    out = run_auto_search(cfg, backbone, method)
    found = out["extra"]["auto_search"]
    assert found["settings"]["plumbing_only"] and found["data_split"] == "16-13"
    assert len(found["ranked"]) == 2 and len(found["not_reranked"]) == 1
    devs = [c["rerank"]["dev"] for c in found["ranked"]]
    assert devs == sorted(devs, reverse=True) and out["metrics"]["dev"]["overall"]["accuracy"] == devs[0]
    assert [c["rank"] for c in found["ranked"]] == [0, 1]
    accs = [c["train_accuracy"] for c in found["ranked"]]
    assert all(0 <= a <= 1 for a in accs) and all(len(c["token_ids"]) == 2 for c in found["ranked"])
    assert json.loads((tmp_path / out["extra"]["artifact"]).read_text()) == json.loads(json.dumps(found))


def test_template_search_job_with_the_tiny_t5_lists_what_it_found(tmp_path, monkeypatch):
    from hydra.utils import instantiate

    from bench.backbones.loading import load_backbone
    from bench.identity import resolved_config
    from bench.lmbff.auto_stage import run_auto_search

    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    torch.set_num_threads(1)
    overrides = [f"paths.results_dir={tmp_path}", "seed=21", "debug=lmbff_smoke", "trainer.max_steps=1", "device=cpu"]
    with hydra_context():
        cfg = resolved_config(compose_job("lmbff_auto_sst2_search_t", "tiny-roberta", overrides))
    backbone = load_backbone(cfg["model"], device="cpu", dtype=torch.float32, models_dir=cfg["paths"]["models_dir"])
    method = instantiate(cfg["method"]["component"])
    method.setup(backbone)
    found = run_auto_search(cfg, backbone, method)["extra"]["auto_search"]
    assert found["settings"] == {"kind": "templates", "t5_model": "tiny-t5", "beam": 2, "rerank": 2,
                                 "plumbing_only": True}
    every = found["ranked"] + found["not_reranked"] + found["unusable"]
    assert sorted(c["format"] for c in every) == [0, 1]  # beam 2: one template per single-sentence format
    for cand in every:  # each kept with LM-BFF's notation, and the suite's text or why there is none
        assert cand["lmbff"] and len(cand["ids"]) <= 18 and cand["log_likelihood"] < 0
        assert (cand["text"] is None) == ("unusable" in cand)
