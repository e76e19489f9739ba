"""AutoPrompt's search as a LAMA study stage (bench.search.stage): the planner runs the search one wave before the
evaluation, the evaluation reads the set the search record names (by exact record name, the set by sha256) and
refuses before weights load, naming the command, when the search has not run; end to end on tiny-bert."""

import json

import pytest

from bench.inputs import InputsError, needed_runs
from bench.job import JobFailed, plan_job, run_job
from bench.study import compose_job, hydra_context, load_study, stages

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
SEARCH, EVAL = "lama34k_autoprompt_trigger_search", "lama34k_autoprompt_search"


def test_the_planner_runs_each_search_one_wave_before_its_evaluation(tmp_path):
    presets = load_study("lama")["presets"]
    assert {SEARCH, EVAL, "lama29k_autoprompt_trigger_search", "lama29k_autoprompt_search"} <= set(presets)
    with hydra_context():
        needs = {p: list(compose_job(p, "tiny-bert", [f"paths.results_dir={tmp_path}", "debug=smoke"]).needs.presets)
                 for p in presets}
    assert needs[EVAL] == [SEARCH] and needs["lama29k_autoprompt_search"] == ["lama29k_autoprompt_trigger_search"]
    assert needs[SEARCH] == [] and needs["lama29k_autoprompt_trigger_search"] == []
    waves = stages(presets, needs)
    wave_of = {p: i for i, wave in enumerate(waves) for p in wave}
    assert wave_of[SEARCH] == 0 and wave_of[EVAL] == 1
    assert wave_of["lama29k_autoprompt_trigger_search"] == 0 and wave_of["lama29k_autoprompt_search"] == 1
    assert waves[1] == [EVAL, "lama29k_autoprompt_search"]  # every other LAMA preset reads nothing: stage 1


def test_the_evaluation_reads_the_search_of_its_own_model_seed_and_overrides(tmp_path):
    common = [f"paths.results_dir={tmp_path}", "debug=smoke", "task.relations=[P17]"]
    with hydra_context():
        consumer = compose_job(EVAL, "tiny-bert", common)
        (run,) = needed_runs(consumer, plan_job, common)
        producer = compose_job(SEARCH, "tiny-bert", [*common, "seed=0"])
        (planned,) = plan_job(producer, SEARCH)
        other = compose_job(SEARCH, "tiny-bert", [*common, "seed=0", "autoprompt.num_cand=5"])
    assert run.name == planned.spec.name and run.path == planned.path and run.seed == 0 == consumer.seed
    assert plan_job(other, SEARCH)[0].spec.name != run.name  # another search setting is another search
    assert consumer.task.runner == "bench.search.stage.run_searched_lama" and consumer.dtype == "fp32"


def test_the_evaluation_refuses_before_weights_load_when_the_search_is_missing(tmp_path, lama_data, monkeypatch):
    monkeypatch.setattr("bench.backbones.loading.load_backbone", lambda *a, **k: pytest.fail("weights loaded"))
    common = [f"paths.results_dir={tmp_path}", "debug=smoke", "task.relations=[P17]", "device=cpu"]
    with hydra_context():
        cfg = compose_job(EVAL, "tiny-bert", common)
        with pytest.raises(InputsError) as err:
            run_job(cfg, EVAL)
    text = str(err.value)
    assert "1 of 1 input runs" in text and "missing: lama-lama34k__tiny-bert__manual__autoprompt_trigger_search-r0" in text
    assert ("make them with: python -m bench.run -m experiment=lama34k_autoprompt_trigger_search model=tiny-bert "
            "ranks=preset seed=0") in text
    failed = list((tmp_path / "failed").glob("lama-lama34k__tiny-bert__manual__autoprompt_search-r0__*.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["error_type"] == "InputsError"


def test_search_then_evaluation_on_tiny_bert(tmp_path, lama_data, lama_data_copy, monkeypatch):
    """Stage 1 writes the set (the tiny schedule, recorded), stage 2 scores exactly that set: its prompts are the
    set's rows, its dev P@1 per relation the search record's; a set changed afterwards is refused."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data, results = lama_data_copy, tmp_path / "results"
    common = [f"paths.results_dir={results}", f"paths.data_dir={data}", "debug=smoke", "task.relations=[P17]",
              "task.limit_per_relation=8", "device=cpu"]
    with hydra_context():
        run_job(compose_job(SEARCH, "tiny-bert", common), SEARCH)
        run_job(compose_job(EVAL, "tiny-bert", common), EVAL)
    (search_path,) = (results / "runs" / "lama").glob("*autoprompt_trigger_search*.json")
    (eval_path,) = (results / "runs" / "lama").glob("*manual__autoprompt_search*.json")
    search, evaluated = json.loads(search_path.read_text()), json.loads(eval_path.read_text())
    found = search["extra"]["autoprompt_search"]
    assert found["iterations"] == 24 and found["cpu_schedule"] == {"prefix": "tiny-", "iters": 24}
    assert found["settings"]["num_cand"] == 10 and found["settings"]["seed"] == 0 and found["limit_per_relation"] == 8
    assert found["prompt_set"].endswith("_" + search_path.stem.rsplit("__", 1)[-1])  # named by the record's hash
    set_file = data / "lama" / "prompts" / f"{found['prompt_set']}.jsonl"
    rows = [json.loads(line) for line in set_file.read_text().splitlines()]
    assert {r["relation"] for r in rows} == set(found["relations"]) and rows
    assert evaluated["extra"]["templates"] == {r["relation"]: r["template"] for r in rows}
    assert evaluated["inputs"][0]["name"] == search_path.stem
    assert evaluated["extra"]["autoprompt_search"]["iterations"] == 24
    assert evaluated["extra"]["autoprompt_search"]["search_record"] == f"runs/lama/{search_path.name}"
    assert evaluated["report_split"] == "test" and set(evaluated["metrics"]["test"]["groups"]) == set(found["relations"])
    for relation, group in evaluated["metrics"]["dev"]["groups"].items():
        assert group["p_at_1"] == search["metrics"]["dev"]["groups"][relation]["p_at_1"]
    table = (results / found["tables"][0].removeprefix(str(results) + "/")).read_text()
    for relation, tokens in found["relations"].items():  # the found prompts' own table: relation -> trigger tokens
        assert f"| {relation} | {' '.join(tokens)} |" in table
    assert "24 iterations (the reference: 1,000)" in table
    set_file.write_text(set_file.read_text().replace(rows[0]["template"], "[X] edited [Y] ."))
    with hydra_context(), pytest.raises(JobFailed):
        run_job(compose_job(EVAL, "tiny-bert", [*common, "force=true"]), EVAL)
    (failure,) = (results / "failed").glob(f"{eval_path.stem}.*.json")
    failure = json.loads(failure.read_text())
    assert failure["error_type"] == "DataError" and "changed since the search record" in failure["message"]
    assert json.loads(eval_path.read_text()) == evaluated  # the finished record stays as it was
