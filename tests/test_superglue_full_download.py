"""data_prep superglue --full: the download path (here from a file:// zip standing in for the official URL) refuses
an unpinned archive, checks a pinned digest and row counts, and writes normalised rows."""

import json
import zipfile

import pytest

from bench.errors import DataError
from data_prep.common import sha256_file
from data_prep.superglue import full

ROWS = [{"premise": "A.", "hypothesis": "B.", "label": "entailment", "idx": 0},
        {"premise": "C.", "hypothesis": "D.", "label": "neutral", "idx": 1}]


@pytest.fixture
def release(tmp_path, monkeypatch):
    archive = tmp_path / "release" / "CB.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("CB/train.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS))
    monkeypatch.setattr(full, "BASE_URL", (tmp_path / "release").as_uri() + "/{task}.zip")
    monkeypatch.setattr(full, "WANTED", {("CB", "train"): 2})
    monkeypatch.setattr(full, "SUMS", tmp_path / "SHA256SUMS_FULL")
    return archive


def test_unpinned_archive_is_refused_with_its_digest(release, tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_TRUST_UNPINNED", raising=False)
    with pytest.raises(DataError, match=sha256_file(release)):
        full.prepare_full(tmp_path / "out")
    assert not (tmp_path / "out" / "superglue" / "CB" / "train.jsonl").exists()


def test_pinned_archive_writes_normalised_rows_and_a_wrong_digest_fails(release, tmp_path):
    (tmp_path / "SHA256SUMS_FULL").write_text(f"{sha256_file(release)}  CB.zip\n")
    counts = full.prepare_full(tmp_path / "out")
    assert counts == {"superglue/CB/train": 2}
    rows = [json.loads(x) for x in (tmp_path / "out" / "superglue" / "CB" / "train.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["entailment", "neutral"] and rows[0]["split"] == "train"
    (tmp_path / "SHA256SUMS_FULL").write_text("0" * 64 + "  CB.zip\n")
    (tmp_path / "out" / "_downloads" / "superglue_full" / "CB.zip").unlink()
    with pytest.raises(DataError, match="checksum mismatch"):
        full.prepare_full(tmp_path / "out2")
