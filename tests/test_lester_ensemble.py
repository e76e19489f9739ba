"""Lester et al.'s prompt ensemble (Table 3): five prompts on one frozen tiny T5 scored in ONE batched pass give the
per-prompt scores and predictions of five ordinary separate runs' scoring (ClassificationTask.predict, one prompt
each); the majority vote equals a count by hand, ties included; saved prompts round-trip and refuse tampering;
the ensemble runner's record holds the vote, the average, the best prompt and each prompt."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from bench.errors import ConfigError, DataError
from bench.methods.prompt_ensemble import batched_option_scores, majority_vote, run_prompt_ensemble
from bench.methods.prompt_store import prompt_path, read_prompt, write_prompt
from bench.methods.prompt_tuning import PromptTuning
from bench.paths import REPO_ROOT
from bench.superglue.task import ClassificationTask

SEEDS = [42, 43, 44, 45, 46]
LENGTH = 4


TASK, DATASET = "cb", "CB"  # three label strings (votes can tie)


def _template() -> dict:
    return yaml.safe_load((REPO_ROOT / "conf" / "template" / f"t5_{TASK}.yaml").read_text())


def _cfg(num_prompts: int = 1, runner: str = "bench.superglue.runner.run_classification", seed: int = 42) -> dict:
    return {"seed": seed, "paths": {}, "template": _template(), "model": {"name": "tiny-t5"},
            "method": {"name": "prompt_tuning", "component": {"length": LENGTH, "num_prompts": num_prompts,
                                                              "form": "text2text"}},
            "task": {"name": TASK, "dataset": DATASET, "variant": "superglue", "limit": 6, "max_length": 64,
                     "batch_size": 4, "runner": runner, "eval_splits": ["val"]},
            "trainer": {"lr": 0.3}}


def _prompts(backbone) -> list[torch.Tensor]:
    """Five different prompts (one per seed), drawn as the random-uniform init draws them."""
    out = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        method = PromptTuning(length=LENGTH, init="random", form="text2text")
        method.setup(backbone)
        out.append(method.saved_prompt())
    return out


def test_majority_vote_by_hand_with_a_tie():
    # five prompts x four examples, three labels
    preds = [[0, 2, 1, 2],
             [1, 2, 1, 0],
             [1, 0, 2, 1],
             [0, 2, 2, 1],
             [1, 1, 0, 0]]
    # example 0: label 1 x3, label 0 x2 -> 1; example 1: label 2 x3 -> 2
    # example 2: labels 1 x2, 2 x2, 0 x1 -> tie between 1 and 2; prompt 0 (the earliest) said 1 -> 1
    # example 3: labels 0 x2, 1 x2, 2 x1 -> tie between 0 and 1; prompt 0 said 2 (not tied), prompt 1 said 0 -> 0
    voted, ties = majority_vote(preds)
    assert voted == [1, 2, 1, 0] and ties == 2
    assert majority_vote([[1, 0], [0, 0]]) == ([1, 0], 1)  # two prompts disagreeing: the first prompt's label
    with pytest.raises(ConfigError, match="different numbers"):
        majority_vote([[0, 1], [0]])


def test_batched_pass_equals_five_separate_runs_scoring(tiny_backbone):
    backbone = tiny_backbone("tiny-t5")
    prompts = _prompts(backbone)
    assert all((a - b).abs().max() > 1e-3 for a, b in zip(prompts, prompts[1:], strict=False))
    ensemble = PromptTuning(length=LENGTH, init="random", num_prompts=5, form="text2text")
    ensemble.setup(backbone)
    ensemble.load_prompts(prompts)
    task = ClassificationTask(_cfg(5), backbone, ensemble)
    assert task.mode == "text2text"
    ensemble.eval_mode()
    calls = []
    hook = backbone.model.get_encoder().register_forward_hook(lambda *args: calls.append(1))
    try:
        batched = batched_option_scores(task, ensemble.scorer(), "val", 5)
    finally:
        hook.remove()
    n = len(task.examples("val"))
    assert n == 6 and len(calls) == 2  # 6 examples at batch size 4: two passes for all five prompts together
    separate_preds = []
    for k, vectors in enumerate(prompts):  # prompt k alone, scored as an ordinary run scores its eval split
        single = PromptTuning(length=LENGTH, init="random", form="text2text")
        single.setup(backbone)
        single.load_prompts([vectors])
        alone = ClassificationTask(_cfg(1), backbone, single)
        single.eval_mode()
        preds = alone.predict("val", single.scorer())
        _, scores = alone.scored["val"]
        torch.testing.assert_close(torch.tensor(batched[k]), torch.tensor(scores), atol=1e-5, rtol=0)
        assert [max(range(len(s)), key=s.__getitem__) for s in batched[k]] == preds
        separate_preds.append(preds)
    for k in range(4):  # prompt_index really routes: each prompt's scores are its own
        assert (torch.tensor(batched[k]) - torch.tensor(batched[k + 1])).abs().max() > 1e-4


def test_saved_prompt_round_trips_and_refuses_a_changed_file(tmp_path):
    record_path = tmp_path / "run.json"
    vectors = torch.arange(12, dtype=torch.float32).view(3, 4)
    ref = write_prompt(record_path, vectors)
    assert ref["file"] == "run.prompt.safetensors" and ref["shape"] == [3, 4]
    record = {"name": "run", "prompt": ref}
    assert torch.equal(read_prompt(record_path, record), vectors)
    with pytest.raises(DataError, match="no saved prompt"):
        read_prompt(record_path, {"name": "old"})
    prompt_path(record_path).write_bytes(prompt_path(record_path).read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(DataError, match="sha256"):
        read_prompt(record_path, record)


def _producer_record(tmp_path, cfg: dict, vectors: torch.Tensor, seed: int) -> dict:
    from bench.records import RunSpec, write_record

    spec = RunSpec(task=TASK, model="tiny-t5", method="prompt_tuning", template=f"t5_{TASK}", seed=seed,
                   variant="superglue", config_hash=f"s{seed}")
    path = tmp_path / "runs" / TASK / f"{spec.name}.json"
    producer = {**copy.deepcopy(cfg), "seed": seed}
    producer["method"]["component"]["num_prompts"] = 1
    producer["task"]["runner"] = "bench.superglue.runner.run_classification"
    payload = {"metrics": {}, "protocol": {}, "config": producer, "prompt": write_prompt(path, vectors)}
    write_record(path, spec, payload)
    from bench.inputs import input_ref

    return input_ref(path, tmp_path)


# hand-made predictions of five prompts on the first six CB val examples (gold 1, 2, 0, 1, 1, 1)
GOLD = [1, 2, 0, 1, 1, 1]
PREDS = [[1, 2, 0, 1, 1, 2],  # 5/6 correct: the best prompt
         [1, 2, 0, 0, 0, 0],  # 3/6
         [0, 0, 0, 1, 1, 1],  # 4/6
         [2, 1, 1, 2, 2, 1],  # 1/6
         [2, 1, 2, 0, 0, 1]]  # 1/6
# votes: ex0 1,1,0,2,2 -> tie 1/2, prompt 0 said 1; ex1 2,2,0,1,1 -> tie 2/1, prompt 0 said 2; ex2 -> 0;
# ex3 and ex4 1,0,1,2,0 -> tie 1/0, prompt 0 said 1; ex5 2,0,1,1,1 -> 1. Voted 1,2,0,1,1,1: 6/6 correct, 4 ties.


def test_ensemble_record_holds_vote_average_best_and_each_prompt(tiny_backbone, tmp_path, monkeypatch):
    import bench.methods.prompt_ensemble as ensemble_module

    backbone = tiny_backbone("tiny-t5")
    prompts = _prompts(backbone)
    cfg = _cfg(5, runner="bench.methods.prompt_ensemble.run_prompt_ensemble")
    cfg["paths"] = {"results_dir": str(tmp_path)}
    refs = [_producer_record(tmp_path, cfg, v, s) for s, v in reversed(list(zip(SEEDS, prompts, strict=True)))]
    loaded = []

    def scores(task, scorer, split, num_prompts):  # the batched pass is tested above; here its output is fixed
        loaded.append(task.method.encoder.embedding.weight.detach().clone())
        assert [ex.label for ex in task.examples(split)] == GOLD and num_prompts == 5
        return [[[1.0 if j == p else 0.0 for j in range(3)] for p in preds] for preds in PREDS]

    monkeypatch.setattr(ensemble_module, "batched_option_scores", scores)
    method = PromptTuning(length=LENGTH, init="random", num_prompts=5, form="text2text")
    method.setup(backbone)
    payload = run_prompt_ensemble({**cfg, "inputs": refs}, backbone, method)
    torch.testing.assert_close(loaded[0], torch.cat(prompts), atol=0, rtol=0)  # seed order, whatever the refs' order
    assert [p["seed"] for p in payload["extra"]["ensemble"]["prompts"]] == SEEDS
    val = payload["metrics"]["val"]
    assert val["overall"]["accuracy"] == pytest.approx(1.0) and val["overall"]["f1_macro"] == pytest.approx(1.0)
    assert payload["extra"]["ensemble"]["ties"] == {"val": 4}
    assert val["subsets"]["average"]["accuracy"] == pytest.approx(14 / 30)  # (5 + 3 + 4 + 1 + 1) / 30
    best = val["subsets"]["best"]  # prompt 0: class F1s 1, 6/7 (3 of 4 ones found), 2/3 (one wrong 2)
    assert best["accuracy"] == pytest.approx(5 / 6) and best["f1_macro"] == pytest.approx((1 + 6 / 7 + 2 / 3) / 3)
    assert [val["subsets"][f"prompt_{k}"]["accuracy"] for k in range(5)] == pytest.approx([5 / 6, 3 / 6, 4 / 6,
                                                                                           1 / 6, 1 / 6])
    assert "best_selected" not in val["subsets"]  # val only: no selection split scored
    rows = payload["per_example"]
    assert [r["prediction"] for r in rows] == GOLD
    assert rows[0]["scores"] == [1.0, 2.0, 2.0] and rows[5]["scores"] == [1.0, 3.0, 1.0]  # votes per label


def test_ensemble_refuses_runs_of_another_recipe(tiny_backbone, tmp_path):
    backbone = tiny_backbone("tiny-t5")
    prompts = _prompts(backbone)[:2]
    cfg = _cfg(2, runner="bench.methods.prompt_ensemble.run_prompt_ensemble")
    cfg["paths"] = {"results_dir": str(tmp_path)}
    other = copy.deepcopy(cfg)
    other["trainer"]["lr"] = 0.1
    refs = [_producer_record(tmp_path, cfg, prompts[0], 42), _producer_record(tmp_path, other, prompts[1], 43)]
    method = PromptTuning(length=LENGTH, init="random", num_prompts=2, form="text2text")
    method.setup(backbone)
    with pytest.raises(ConfigError, match="differ from this ensemble"):
        run_prompt_ensemble({**cfg, "inputs": refs}, backbone, method)


@pytest.mark.slow
def test_a_run_saves_the_prompt_that_gives_its_recorded_predictions(tiny_backbone):
    from bench.superglue.runner import run_classification

    backbone = copy.deepcopy(tiny_backbone("tiny-t5"))
    torch.manual_seed(0)
    method = PromptTuning(length=LENGTH, init="random", form="text2text")
    method.setup(backbone)
    cfg = {**_cfg(1), "trainer": {"optimizer": "adafactor", "lr": 0.3, "batch_size": 4, "max_epochs": 1, "max_steps": 2,
                                  "schedule": "constant", "early_stopping_patience": 2}}
    cfg["task"] = {**cfg["task"], "dataset": "RTE", "name": "rte", "limit": 4, "eval_splits": None}
    cfg["template"] = yaml.safe_load((REPO_ROOT / "conf" / "template" / "t5_rte.yaml").read_text())
    payload = run_classification(cfg, backbone, method)
    saved = payload["prompt_vectors"]
    assert saved.shape == (LENGTH, 64) and saved.dtype == torch.float32
    fresh = PromptTuning(length=LENGTH, init="random", form="text2text")  # another init, then the saved prompt
    fresh.setup(backbone)
    fresh.load_prompts([saved])
    task = ClassificationTask(cfg, backbone, fresh)
    fresh.eval_mode()
    for split in task.eval_splits:  # the saved prompt scores every split as the run recorded it
        task.predict(split, fresh.scorer())
        recorded = [(r["prediction"], r["scores"]) for r in payload["per_example"] if r["split"] == split]
        preds, scores = task.scored[split]
        assert [p for p, _ in recorded] == preds
        torch.testing.assert_close(torch.tensor([s for _, s in recorded]), torch.tensor(scores), atol=1e-5, rtol=0)
    frozen = PromptTuning(length=LENGTH, init="random", form="text2text", num_prompts=2)
    frozen.setup(backbone)
    assert frozen.saved_prompt() is None  # an ensemble of prompts is no single run's prompt


def test_the_ensemble_job_runs_once_per_seed_list():
    from bench.inputs import compose_job, hydra_compose
    from bench.job import not_applicable

    with hydra_compose():
        default = compose_job("lester_ensemble_rte", "tiny-t5", ["seed=42"])
        given = [compose_job("lester_ensemble_rte", "tiny-t5", [f"seed={s}", "needs.seeds=[43,44]"]) for s in (43, 44)]
        producer = compose_job("lester_prompt_tuning_rte", "tiny-t5", ["seed=44", "needs.seeds=[43,44]"])
    assert default.needs.seeds == SEEDS and default.method.component.num_prompts == 5
    assert not_applicable(default) is None and not_applicable(given[0]) is None  # the first seed of the list
    assert "first seed (43)" in not_applicable(given[1])  # seed 44 would repeat seed 43's record
    assert not_applicable(producer) is None  # every seed of the runs it reads still runs


def test_modes_other_than_teacher_forced_entries_are_refused():
    from types import SimpleNamespace

    from bench.methods.prompt_ensemble import _mode_check

    _mode_check(SimpleNamespace(mode="text2text", family="seq2seq", decoding="parallel", task="RTE"))
    for mode, family, decoding in (("words", "mlm", "parallel"), ("span", "mlm", "ltr"), ("options", "mlm", "ltr")):
        with pytest.raises(ConfigError, match="not implemented"):
            _mode_check(SimpleNamespace(mode=mode, family=family, decoding=decoding, task="CB"))


def test_the_ensemble_applies_exactly_where_its_seed_runs_do():
    """No checkpoint filter of its own: the seed runs it reads (lester_prompt_tuning_<task>, no sweep.checkpoints)
    run on span-corruption and LM-adapted T5 alike (Figure 3(c)'s "Span Corruption" point), so the ensemble does too;
    neither runs on a non-T5 model. Every task: the same sweep filters as its producer (only first_seed_only added)."""
    from omegaconf import OmegaConf

    from bench.inputs import compose_job, hydra_compose
    from bench.job import not_applicable

    study = yaml.safe_load((REPO_ROOT / "conf/study/lester.yaml").read_text())
    tasks = [p.removeprefix("lester_ensemble_") for p in study["presets"] if p.startswith("lester_ensemble_")]
    assert sorted(tasks) == ["boolq", "cb", "copa", "multirc", "record", "rte", "wic"]
    with hydra_compose():
        sweeps = {task: [OmegaConf.to_container(compose_job(f"lester_{p}_{task}", "t5-v1_1-small", []).sweep)
                         for p in ("ensemble", "prompt_tuning")] for task in tasks}
        applies = {model: [not_applicable(compose_job(f"lester_{p}_rte", model, ["seed=42"])) is None
                           for p in ("ensemble", "prompt_tuning")]
                   for model in ("t5-v1_1-xxl", "t5-small-lm-adapt", "tiny-t5", "bert-base-cased")}
    for task, (ens, prod) in sweeps.items():
        assert ens.pop("first_seed_only") is True and "checkpoints" not in prod and ens == prod, task
    assert applies == {"t5-v1_1-xxl": [True, True], "t5-small-lm-adapt": [True, True], "tiny-t5": [True, True],
                       "bert-base-cased": [False, False]}
