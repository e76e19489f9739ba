"""``bench.study status`` (issue 27): each finished run's score, and ``--clear-failed`` moving failure files aside."""

import json

import pytest

from bench.records import RunSpec, write_failure, write_record
from bench.study import main, record_score


def _results(tmp_path):
    spec = RunSpec(task="cb", model="tiny-albert", method="pet", template="pet_cb", seed=1, config_hash="abcd1234")
    write_record(tmp_path / "runs" / "cb" / f"{spec.name}.json", spec,
                 {"metrics": {"val": {"overall": {"accuracy": 0.5, "score": 0.8125, "n": 16}}}, "report_split": "val",
                  "config": {}})
    bad = RunSpec(task="cb", model="tiny-albert", method="pet", template="lama", seed=1, config_hash="ffff0000")
    for _ in range(2):
        write_failure(tmp_path / "failed", bad, ValueError("template config 'lama' is a per-relation prompt set"), {})
    return spec, bad


def test_record_score_reads_the_report_splits_headline():
    lama = {"report_split": "test", "metrics": {"test": {"overall": {"macro_over_relations": 0.25, "pooled": 0.3}}}}
    assert record_score(lama) == "test P@1 macro 0.2500"
    assert record_score({"report_split": "val", "metrics": {"val": {"overall": {"accuracy": 1.0}}}}) == "val accuracy 1.0000"
    assert record_score({"report_split": "val", "metrics": {}}) == "val: no score"


def test_status_shows_scores_and_clear_failed_moves_the_failures_aside(tmp_path, capsys):
    spec, bad = _results(tmp_path)
    assert main(["status", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"done     {spec.name}  [val score 0.8125]" in out
    assert f"failed   {bad.name}" in out and "--clear-failed" in out
    assert main(["status", "--results", str(tmp_path), "--clear-failed"]) == 0
    out = capsys.readouterr().out
    assert "cleared 1 failed runs: 2 failure files moved to" in out
    assert not list((tmp_path / "failed").glob("*.json")) and len(list((tmp_path / "failed" / "cleared").glob("*.json"))) == 2
    assert all(json.loads(p.read_text())["name"] == bad.name for p in (tmp_path / "failed" / "cleared").glob("*.json"))
    assert main(["status", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "failed   " not in out and "0 failed runs without a record" in out


def test_a_malformed_study_or_preset_yaml_is_one_error_naming_file_line_and_column(tmp_path):
    """Issue 27 Found 8: a malformed conf YAML gave a long traceback; bench.study now stops with one error."""
    import shutil

    from bench.errors import ConfigError
    from bench.paths import REPO_ROOT
    from bench.study import load_study

    conf = tmp_path / "conf"
    shutil.copytree(REPO_ROOT / "conf", conf)
    (conf / "study" / "lmbff.yaml").write_text("name: lmbff\npresets: [lmbff_sst2_prompt\nmodels: [tiny-roberta]\n")
    with pytest.raises(ConfigError) as err:
        load_study("lmbff", conf)
    first = str(err.value).splitlines()[0]
    assert first.startswith(f"{conf / 'study' / 'lmbff.yaml'}:3:") and "malformed YAML" in first
    shutil.copy(REPO_ROOT / "conf" / "study" / "lmbff.yaml", conf / "study" / "lmbff.yaml")
    (conf / "experiment" / "lmbff_sst2_prompt.yaml").write_text("task:\n  name: sst2\n   lr: 1\n")
    with pytest.raises(ConfigError, match=r"lmbff_sst2_prompt\.yaml:3:\d+: malformed YAML"):
        load_study("lmbff", conf)
