"""Per-example predictions (issue 26, part 3): written beside every record, checksummed from it, and
``bench.predictions compare`` on two runs (paired accuracy, agreement, bootstrap interval) against hand counts."""

import gzip
import json

import pytest

from bench.errors import DataError
from bench.predictions import (
    compare,
    main,
    paired_bootstrap,
    predictions_path,
    read_predictions,
    row,
    write_predictions,
)
from bench.records import RunSpec, load_record, write_record

A = [row("e0", "val", 0, 0, [2.0, 1.0]), row("e1", "val", 1, 0, [1.0, 0.5]), row("e2", "val", 1, 1, [0.0, 3.0]),
     row("e3", "val", 0, 1, [0.1, 0.2]), row("t0", "test", None, 1, [0.0, 1.0])]
B = [row("e0", "val", 0, 0, [2.0, 1.0]), row("e1", "val", 1, 1, [0.0, 0.5]), row("e2", "val", 1, 1, [0.0, 3.0]),
     row("e3", "val", 0, 0, [0.3, 0.2]), row("e9", "val", 1, 1, [0.0, 1.0])]


def _record(tmp_path, name: str, rows: list[dict]):
    spec = RunSpec(task="cb", model="m", method="pet", template=name, seed=1)
    path = tmp_path / "runs" / "cb" / f"{spec.name}.json"
    ref = write_predictions(path, rows)
    write_record(path, spec, {"metrics": {}, "predictions": ref})
    return path


def test_compare_by_hand():
    """Shared: e0-e3 (t0 only in A, e9 only in B). A right on e0, e2 (2/4); B right on all four (4/4);
    they agree on e0, e2 (2/4); B - A = +0.5."""
    out = compare(A, B)
    assert (out["n_shared"], out["n_only_a"], out["n_only_b"], out["n_labelled"]) == (4, 1, 1, 4)
    assert out["accuracy_a"] == 0.5 and out["accuracy_b"] == 1.0 and out["difference"] == 0.5
    assert out["agreement"] == 0.5
    low, high = out["interval"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0


def test_bootstrap_of_a_constant_difference_is_that_difference():
    # B right everywhere, A wrong everywhere: every resample has difference 1
    assert paired_bootstrap([False] * 7, [True] * 7, samples=200) == (1.0, 1.0)
    # equal runs: every resample has difference 0
    assert paired_bootstrap([True, False, True], [True, False, True], samples=200) == (0.0, 0.0)
    # one of two examples flips in B's favour: resampled differences are k/2 for k = 0, 1, 2 (k ~ Binomial(2, .5))
    low, high = paired_bootstrap([False, True], [True, True], samples=2000, seed=3)
    assert (low, high) == (0.0, 1.0)


def test_compare_refuses_runs_on_other_data():
    with pytest.raises(Exception, match="share no scored example"):
        compare(A, B, split="test")
    with pytest.raises(Exception, match="disagree on gold"):
        compare(A, [row("e0", "val", 1, 0, None)])


def test_predictions_file_is_gzip_jsonl_checksummed_and_never_replaced(tmp_path, capsys):
    path_a, path_b = _record(tmp_path, "a", A), _record(tmp_path, "b", B)
    record = load_record(path_a)
    assert record["predictions"]["file"] == predictions_path(path_a).name and record["predictions"]["n"] == 5
    assert record["predictions"]["splits"] == {"val": 4, "test": 1}
    with gzip.open(predictions_path(path_a), "rt") as handle:
        assert [json.loads(line) for line in handle] == A
    assert read_predictions(path_a) == A
    with pytest.raises(FileExistsError):  # beside a finished record: kept
        write_predictions(path_a, B)
    assert main(["compare", str(path_a), str(path_b), "--samples", "100"]) == 0
    out = capsys.readouterr().out
    assert "4 shared examples" in out and "agreement 0.5000" in out and "accuracy A 0.5000, B 1.0000; B - A +0.5000" in out
    assert main(["compare", path_a.stem, path_b.stem, "--results", str(tmp_path)]) == 0  # by run name
    predictions_path(path_a).write_bytes(gzip.compress(b'{"id": "x"}\n'))
    with pytest.raises(DataError, match="sha256"):
        read_predictions(path_a)
    assert main(["compare", str(path_a), str(path_b)]) == 2


def test_a_crashed_runs_file_is_moved_aside(tmp_path):
    path = tmp_path / "runs" / "cb" / "x.json"
    write_predictions(path, A)  # no record followed: a crash
    ref = write_predictions(path, B)
    assert [p.name for p in path.parent.glob("*.bak")] and ref["n"] == 5
    assert gzip.decompress(predictions_path(path).read_bytes()).decode().count("\n") == 5


def _run(tmp_path, preset: str | None, model: str, overrides: list[str]) -> list:
    """Run one job in-process; its record paths."""
    from bench.inputs import compose_config
    from bench.job import plan_job, run_job
    from bench.study import compose_job, hydra_context

    with hydra_context():
        if preset:
            cfg = compose_job(preset, model, [*overrides, "device=cpu", f"paths.results_dir={tmp_path}"])
        else:
            cfg = compose_config([f"model={model}", *overrides, "device=cpu", f"paths.results_dir={tmp_path}"])
        run_job(cfg, preset)
        return [r.path for r in plan_job(cfg, preset)]


@pytest.mark.slow
def test_every_task_family_writes_predictions_that_give_its_metrics(lama_data, tmp_path, capsys):
    """LAMA, SuperGLUE, LM-BFF: a predictions file per record, whose rows recount the record's metrics;
    then compare on two CB runs that differ in trainer.lr."""
    lama = _run(tmp_path, "lama34k_manual", "tiny-bert", ["debug=smoke", "task.relations=[P17,P19]",
                                                         "task.limit_per_relation=4"])
    cb = [_run(tmp_path, None, "tiny-albert", ["task=cb", "method=pet", "template=pet_cb", "debug=smoke",
                                               f"trainer.lr={lr}"])[0] for lr in ("1e-4", "1e-3")]
    sst2 = _run(tmp_path, "lmbff_sst2_prompt", "tiny-roberta", ["debug=lmbff_smoke", "seed=13", "ranks=null",
                                                              "template.rank=0", "grid_limit=1"])
    for path in [*lama, *cb, *sst2]:
        record = load_record(path)
        rows = read_predictions(path)
        assert predictions_path(path).is_file() and record["predictions"]["n"] == len(rows) > 0
        for split, metrics in record["metrics"].items():
            mine = [r for r in rows if r["split"] == split]
            assert len(mine) == record["predictions"]["splits"][split]
            overall = metrics["overall"]
            hits = sum(r["prediction"] == r["gold"] for r in mine) / len(mine)
            if record["spec"]["task"].startswith("lama"):
                assert hits == pytest.approx(overall["pooled"]) and all(r["scores"] is None for r in mine)
            else:
                assert hits == pytest.approx(overall["accuracy"])
                assert all(len(r["scores"]) == 2 and r["prediction"] == max((0, 1), key=r["scores"].__getitem__)
                           for r in mine) or record["spec"]["task"] == "cb"
                if record["spec"]["task"] == "cb":  # 3 labels: entailment, contradiction, neutral
                    assert all(len(r["scores"]) == 3 for r in mine)
    assert main(["compare", str(cb[0]), str(cb[1])]) == 0
    out = capsys.readouterr().out
    assert "shared examples" in out and "paired bootstrap 95% interval" in out
