"""Run-time data integrity (issue 27, Found 4): a run refuses prepared data that differ from data_prep's
MANIFEST, naming file, line and field where a row is damaged, also when every run of the job is finished.
Expected digests are computed here with hashlib; nothing touches the shared data/ folder (copies only)."""

import hashlib
import json
import os
import shutil

import pytest
from hydra import compose, initialize_config_dir

import bench.backbones.loading as loading
import bench.job as job
from bench.data_check import CACHE_NAME, check_family
from bench.errors import DataError
from bench.paths import REPO_ROOT, data_dir, models_dir

CB_ROWS = [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": "neutral", "idx": i} for i in range(4)]


def _write_family(root, files):
    """A prepared 'superglue' family: the files and a MANIFEST with their sha256 (computed here)."""
    outputs = {}
    for rel, rows in files.items():
        payload = "".join(json.dumps(r) + "\n" for r in rows).encode()
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(payload)
        outputs[rel] = {"rows": len(rows), "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    (root / "superglue").mkdir(parents=True, exist_ok=True)
    (root / "superglue/MANIFEST.json").write_text(json.dumps({"family": "superglue", "outputs": outputs}))
    return root


def _rewrite(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_unchanged_files_pass_and_the_digests_are_cached_by_size_and_mtime(tmp_path):
    root = _write_family(tmp_path, {"fewglue/CB/train.jsonl": CB_ROWS})
    assert check_family(root, "superglue") == {"verified": True, "manifest": str(root / "superglue/MANIFEST.json"),
                                               "files": 1, "rows_only": []}
    cache = json.loads((root / CACHE_NAME).read_text())
    stat = (root / "fewglue/CB/train.jsonl").stat()
    assert cache["fewglue/CB/train.jsonl"][:2] == [stat.st_size, stat.st_mtime_ns]
    os.utime(root / "fewglue/CB/train.jsonl", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same bytes
    assert check_family(root, "superglue")["verified"] is True


def test_a_row_without_its_label_is_refused_with_file_line_field_and_the_fix(tmp_path):
    root = _write_family(tmp_path, {"fewglue/CB/train.jsonl": CB_ROWS})
    rows = [dict(r) for r in CB_ROWS]
    del rows[2]["label"]
    _rewrite(root / "fewglue/CB/train.jsonl", rows)
    with pytest.raises(DataError) as caught:
        check_family(root, "superglue")
    text = str(caught.value)
    assert f"{root / 'fewglue/CB/train.jsonl'}:3 (field 'label'): required field is missing" in text
    assert "fix: restore the prepared data with `python -m data_prep superglue --force`" in text


def test_a_label_outside_the_tasks_labels_names_the_value(tmp_path):
    root = _write_family(tmp_path, {"fewglue/CB/dev32.jsonl": CB_ROWS})
    _rewrite(root / "fewglue/CB/dev32.jsonl", [*CB_ROWS[:3], {**CB_ROWS[3], "label": "maybe"}])
    with pytest.raises(DataError, match=r"dev32.jsonl:4 \(field 'label'\): 'maybe' is not one of"):
        check_family(root, "superglue")


def test_a_same_size_edit_with_valid_rows_is_refused_by_its_digest(tmp_path):
    root = _write_family(tmp_path, {"fewglue/CB/train.jsonl": CB_ROWS})
    assert check_family(root, "superglue")["verified"] is True  # digest cached
    path = root / "fewglue/CB/train.jsonl"
    before = path.stat()
    path.write_bytes(path.read_bytes().replace(b'"p1"', b'"q1"'))  # same size, every row still valid
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # an edit moves the mtime
    with pytest.raises(DataError, match=r"train.jsonl: changed since data_prep wrote it \(sha256 "):
        check_family(root, "superglue")


def test_a_file_the_manifest_lists_but_is_gone_and_an_unlisted_bad_file(tmp_path):
    root = _write_family(tmp_path, {"fewglue/CB/train.jsonl": CB_ROWS})
    _rewrite(root / "superglue/CB/train.jsonl", [{"premise": "p", "label": "neutral"}])  # a --full download
    with pytest.raises(DataError, match=r"superglue/CB/train.jsonl:1 \(field 'hypothesis'\)"):
        check_family(root, "superglue")
    (root / "superglue/CB/train.jsonl").unlink()
    (root / "fewglue/CB/train.jsonl").unlink()
    with pytest.raises(DataError, match=r"train.jsonl: listed in the family's MANIFEST.json but missing"):
        check_family(root, "superglue")


def test_no_manifest_means_not_verified_and_says_why(tmp_path):
    (tmp_path / "superglue").mkdir()
    result = check_family(tmp_path, "superglue")
    assert result["verified"] is False and "MANIFEST.json" in result["reason"]


# through a run: the real prepared CB files, copied ------------------------------------------------
@pytest.fixture
def cb_copy(tmp_path):
    src = data_dir()
    if not (src / "superglue/MANIFEST.json").is_file():
        pytest.skip("no prepared SuperGLUE data (make data)")
    for top in ("superglue", "fewglue"):
        shutil.copytree(src / top, tmp_path / "data" / top)
    return tmp_path / "data"


def _cfg(tmp_path, data):
    overrides = [f"paths.root={tmp_path}", f"paths.data_dir={data}", f"paths.models_dir={models_dir()}",
                 f"paths.results_dir={tmp_path / 'results'}", "device=cpu", "dtype=fp32", "task=cb",
                 "model=tiny-albert", "method=pet", "template=pet_cb", "debug=smoke"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_a_run_refuses_the_damaged_file_even_when_every_run_is_finished(tmp_path, cb_copy, monkeypatch):
    monkeypatch.setattr(loading, "load_backbone", lambda *a, **k: pytest.fail("weights loaded"))
    monkeypatch.setattr(job, "is_finished", lambda path: True)  # every run of the job has its record
    cfg = _cfg(tmp_path, cb_copy)
    assert job.run_job(cfg).skipped  # intact data: skipped as finished
    path = cb_copy / "fewglue/CB/train.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    row = json.loads(lines[4])
    del row["label"]
    lines[4] = json.dumps(row) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(DataError, match=rf"{path}:5 \(field 'label'\): required field is missing"):
        job.run_job(cfg)
    failures = list((tmp_path / "results/failed").glob("*.json"))
    assert failures and "field 'label'" in failures[0].read_text()  # a study lists the run as failed, with why
