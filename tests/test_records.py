"""Run records: names from the spec, skip finished, atomic writes, failures kept apart."""

import json

import pytest

from bench.errors import DataError
from bench.io_utils import atomic_write_json
from bench.records import (
    RunSpec,
    is_finished,
    iter_records,
    load_record,
    record_path,
    write_failure,
    write_record,
)

SPEC = RunSpec(task="lama", variant="lama34k", model="tiny-bert", method="manual", template="lama", seed=34)


def test_name_is_derived_from_spec_only():
    assert SPEC.name == "lama-lama34k__tiny-bert__manual__lama__seed34"
    tagged = RunSpec("lama", "m/x", "manual", "lpaqa mine", 1, tag="smoke")
    assert tagged.name == "lama__m-x__manual__lpaqa-mine__seed1__smoke"


def test_write_then_skip_then_force_keeps_old_record(tmp_path):
    path = record_path(tmp_path, SPEC)
    write_record(path, SPEC, {"metrics": {"test": {"overall": {"pooled": 0.5}}}})
    assert is_finished(path)
    with pytest.raises(FileExistsError):
        write_record(path, SPEC, {"metrics": {}})
    assert load_record(path)["metrics"]["test"]["overall"]["pooled"] == 0.5
    write_record(path, SPEC, {"metrics": {"test": {"overall": {"pooled": 0.7}}}}, force=True)
    backups = list(path.parent.glob("*.json.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text())["metrics"]["test"]["overall"]["pooled"] == 0.5
    assert load_record(path)["metrics"]["test"]["overall"]["pooled"] == 0.7
    assert [p.name for p, _ in iter_records(tmp_path)] == [path.name]


def test_crash_during_write_leaves_no_half_record(tmp_path, monkeypatch):
    path = tmp_path / "r.json"

    class Boom:  # json.dumps fails midway through serialising the payload
        def __repr__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": Boom()})
    assert not path.exists() and list(tmp_path.iterdir()) == []

    import os

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        atomic_write_json(path, {"a": 1})
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_failure_is_kept_apart(tmp_path):
    try:
        raise ValueError("bad")
    except ValueError as err:
        failed = write_failure(tmp_path / "failed", SPEC, err, {"x": 1})
    record = json.loads(failed.read_text())
    assert record["status"] == "failed" and "ValueError" in "".join(record["traceback"])
    assert not (tmp_path / "runs").exists()


def test_corrupt_record_names_file_and_fix(tmp_path):
    path = tmp_path / "lama" / "x.json"
    path.parent.mkdir()
    path.write_text('{"name": "x", "status": ')
    with pytest.raises(DataError, match=r"(?s)x\.json:1.*force=true"):
        load_record(path)
    assert not is_finished(path)


def test_name_carries_rank_and_config_hash():
    spec = RunSpec("lama", "tiny-bert", "manual", "pararel", 34, variant="lama34k", rank=3, config_hash="0a1b2c3d")
    assert spec.name == "lama-lama34k__tiny-bert__manual__pararel-r3__seed34__0a1b2c3d"
    assert spec.as_dict()["rank"] == 3 and spec.as_dict()["template"] == "pararel"


def test_schema_1_records_load_as_schema_2(tmp_path):
    old = {"schema_version": 1, "name": "lama-lama34k__tiny-bert__manual__pararel-r3__seed34", "status": "finished",
           "spec": {"task": "lama", "variant": "lama34k", "model": "tiny-bert", "method": "manual",
                    "template": "pararel-r3", "seed": 34, "tag": None},
           "metrics": {"test": {"overall": {"pooled": 0.5}}}, "selection_split": "dev", "report_split": "test"}
    path = tmp_path / "lama" / f"{old['name']}.json"
    atomic_write_json(path, old)
    record = load_record(path)
    assert record["schema_version"] == 2 and record["upgraded_from"] == 1
    assert (record["spec"]["template"], record["spec"]["rank"], record["spec"]["config_hash"]) == ("pararel", 3, None)
    assert record["protocol"] == {"selection_split": "dev", "selection_rule": None, "report_split": "test",
                                  "seeds": [34]}


def test_a_parallel_writer_never_replaces_a_finished_record(tmp_path):
    """Two workers finish the same run: the later write fails at the last step and the first record stands."""
    path = record_path(tmp_path, SPEC)
    write_record(path, SPEC, {"metrics": {"test": {"overall": {"pooled": 0.1}}}})
    with pytest.raises(FileExistsError):  # the write that lost the race (after its own existence check)
        atomic_write_json(path, {"metrics": {}}, exclusive=True)
    with pytest.raises(FileExistsError, match="already holds a finished record"):
        write_record(path, SPEC, {"metrics": {}})
    assert load_record(path)["metrics"]["test"]["overall"]["pooled"] == 0.1
    assert not list(path.parent.glob(".*.tmp"))


def test_unreadable_records_are_reported_and_skipped_when_asked(tmp_path):
    write_record(record_path(tmp_path, SPEC), SPEC, {"metrics": {}})
    (tmp_path / "lama" / "broken.json").write_text("{not json")
    errors: list = []
    assert [r["name"] for _, r in iter_records(tmp_path, errors)] == [SPEC.name]
    assert len(errors) == 1 and "broken.json" in str(errors[0])
