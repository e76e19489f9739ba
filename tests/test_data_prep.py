"""data_prep: exact counts from the real mirror, flags, idempotence, and loud failures on bad input."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
import time
from pathlib import Path

import pytest

from bench.errors import DataError
from bench.io_utils import sha256_file
from bench.paths import mirror_dir
from data_prep import lama, lm_bff, superglue
from data_prep.common import CountMismatch, fetch
from data_prep.lama import expected as E

MIRROR = mirror_dir()
pytestmark = pytest.mark.skipif(
    MIRROR is None or not (MIRROR / "lama" / "relations.jsonl").is_file(),
    reason="shared data mirror not found (../shared/data or $BENCH_MIRROR); data_prep tests need it",
)
FAMILIES = {"lama": lama, "superglue": superglue, "lm_bff": lm_bff}


def _lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("data")
    return out, {name: mod.prepare(MIRROR, out, quiet=True) for name, mod in FAMILIES.items()}


def test_lama_fact_totals(prepared):
    out, counts = prepared
    assert counts["lama"]["status"] == "built"
    for variant, want in {"original": (26_772, 7_055, 22_881, 11_157), "original_rob": (25_167, 6_574, 19_962, 9_554)}.items():
        root = out / "lama" / "facts" / variant
        assert sum(_lines(p) for p in root.glob("*/train.jsonl")) == want[0]
        assert sum(_lines(p) for p in root.glob("*/dev.jsonl")) == want[1]
        test_rows = [r for p in root.glob("*/test.jsonl") for r in _rows(p)]
        assert sum(not r["reconstructed"] for r in test_rows) == want[2]
        assert sum(r["reconstructed"] for r in test_rows) == want[3]
        assert len({p.parent.name for p in root.glob("*/test.jsonl")}) == 41


def test_lama_per_relation_counts_match_raw_lines(prepared):
    out, _ = prepared
    raw = MIRROR / "lama" / "fact-retrieval"
    for variant, rel, split, n in [("original", "P19", "test", 944), ("original_rob", "P19", "test", 780),
                                   ("original", "P264", "train", 800), ("original_rob", "P264", "test", 53),
                                   ("original", "P190", "dev", 179)]:
        assert _lines(raw / variant / rel / f"{split}.jsonl") == n
        assert _lines(out / "lama" / "facts" / variant / rel / f"{split}.jsonl") == n
    rebuilt = MIRROR / "lama" / "reconstructed" / "fact-retrieval" / "original" / "P17" / "test.jsonl"
    assert _lines(rebuilt) == 930


def test_lama_reconstructed_flag(prepared):
    out, _ = prepared
    p17 = _rows(out / "lama/facts/original/P17/test.jsonl")
    p19 = _rows(out / "lama/facts/original/P19/test.jsonl")
    assert len(p17) == 930 and all(r["reconstructed"] is True for r in p17)
    assert len(p19) == 944 and all(r["reconstructed"] is False for r in p19)
    assert all(r["reconstructed"] is False for r in _rows(out / "lama/facts/original/P17/train.jsonl"))
    assert list(p19[0]) == ["uuid", "predicate_id", "sub_uri", "sub_label", "obj_uri", "obj_label", "reconstructed"]
    assert p19[0]["uuid"] == "6a9d91c1-eb9b-4142-8371-3c063ec40700" and p19[0]["obj_label"] == "Alexandra"
    assert _rows(out / "lama/facts/original/P19/train.jsonl")[0]["uuid"] is None


def test_lama_missing_splits_are_gaps_not_files(prepared):
    out, _ = prepared
    for variant in E.VARIANTS:
        for rel in ("P190", "P47", "P530"):
            assert not (out / f"lama/facts/{variant}/{rel}/train.jsonl").exists()
        assert not (out / f"lama/facts/{variant}/P47/dev.jsonl").exists()
    manifest = json.loads((out / "lama/MANIFEST.json").read_text())
    missing = sorted(g["output"] for g in manifest["known_gaps"] if g["kind"] == "missing" and "/facts/" in g["output"])
    assert missing == sorted(f"lama/facts/{v}/{r}/{s}.jsonl" for v in E.VARIANTS
                             for r, s in [("P190", "train"), ("P47", "train"), ("P530", "train"), ("P47", "dev")])
    assert sum(g["kind"] == "reconstructed" for g in manifest["known_gaps"]) == 26


def test_lama_manifest_sources(prepared):
    out, _ = prepared
    manifest = json.loads((out / "lama/MANIFEST.json").read_text())
    by_path = {s["path"]: s for s in manifest["sources"]}
    stripped = by_path["lama/fact-retrieval/original/P19/test.jsonl"]
    assert "NOT" in stripped["upstream"]
    assert stripped["sha256"] == sha256_file(MIRROR / "lama/fact-retrieval/original/P19/test.jsonl")
    assert by_path["lama/common_vocabs/common_vocab_cased.txt"]["url"] == (
        "https://raw.githubusercontent.com/princeton-nlp/OptiPrompt/"
        "9450bc96f28ac3df01337c79be079a2ac3defb5c/common_vocabs/common_vocab_cased.txt")
    assert by_path["lama/reconstructed/fact-retrieval/original/P17/test.jsonl"]["url"] is None
    out_info = manifest["outputs"]["lama/facts/original/P19/test.jsonl"]
    assert out_info["rows"] == 944 and out_info["sha256"] == sha256_file(out / "lama/facts/original/P19/test.jsonl")


def test_lama_relations_vocab_prompts_google_re_evidences(prepared):
    out, _ = prepared
    rels = _rows(out / "lama/relations.jsonl")
    assert len(rels) == 41 and rels[0]["relation"] == "P19" and "P102" not in {r["relation"] for r in rels}
    assert rels[0]["template"] == "[X] was born in [Y] ."
    for size, keys in {"34k": (21_035, 21_035, 18_154, 18_154), "29k": (18_154,) * 4}.items():
        for key, n in zip(("bert-base-cased", "bert-large-cased", "roberta-large", "gpt2-xl"), keys, strict=True):
            assert _lines(out / f"lama/vocab/{size}/{key}.txt") == n
    assert (out / "lama/vocab/34k/bert-base-cased.txt").read_text().split("\n")[:2] == ["McKay", "Weiss"]
    assert _lines(out / "lama/vocab/common_vocab_cased.txt") == 21_018
    be_ro_al = (out / "lama/vocab/common_vocab_cased_be_ro_al.txt").read_text().split("\n")
    assert len(be_ro_al) - 1 == 17_230 and be_ro_al[0] == "#"
    sizes = {"lama": 41, "lpaqa": 41, "lpaqa_mine": 1166, "lpaqa_paraphrase": 1073,
             "lpaqa_manual_paraphrase": 1018, "autoprompt_bert": 41, "autoprompt_roberta": 41, "pararel": 329}
    for name, n in sizes.items():
        assert _lines(out / f"lama/prompts/{name}.jsonl") == n
    mine = [r for r in _rows(out / "lama/prompts/lpaqa_mine.jsonl") if r["relation"] == "P19"]
    assert [r["rank"] for r in mine] == list(range(len(mine)))
    assert [r["weight"] for r in mine] == sorted((r["weight"] for r in mine), reverse=True)
    assert mine[0]["template"] == "[X] was born and raised in [Y] ."
    pararel = _rows(out / "lama/prompts/pararel.jsonl")
    assert pararel[0] == {"relation": "P19", "template": "[X] was born in [Y].", "rank": 0,
                          "source": "lama/pararel/pattern_data/graphs_json/P19.jsonl", "weight": None,
                          "lemma": "born", "extended_lemma": "born-in", "tense": "past"}
    assert {r["relation"] for r in pararel} == set(E.TREX_RELATIONS) - {"P31", "P527"}
    for name, n in {"place_of_birth": 2937, "date_of_birth": 1825, "place_of_death": 766}.items():
        assert _lines(out / f"lama/google_re/{name}.jsonl") == n
    assert _rows(out / "lama/google_re/date_of_birth.jsonl")[0]["template"] == "[X] (born [Y])."
    ev = out / "lama/evidences.jsonl.gz"
    assert _lines(ev) == 203_958
    with gzip.open(ev, "rt", encoding="utf-8") as handle:
        first = json.loads(handle.readline())
    assert first["masked_sentence"].endswith("in Southeastern [MASK].")
    assert first["sentence"] == first["masked_sentence"].replace("[MASK]", "Ontario")


def test_superglue_and_fewglue_counts(prepared):
    out, counts = prepared
    assert counts["superglue"]["status"] == "built"
    val = {"BoolQ": 3270, "CB": 56, "COPA": 100, "MultiRC": 83, "RTE": 277, "WiC": 638, "WSC": 104}
    for task, n in val.items():
        assert _lines(out / f"superglue/{task}/val.jsonl") == n
    for task, n in {"RTE": 2490, "WiC": 5428, "WSC": 554}.items():
        assert _lines(out / f"superglue/{task}/train.jsonl") == n
    for task in superglue.TASKS:
        assert _lines(out / f"fewglue/{task}/train.jsonl") == 32
        assert _lines(out / f"fewglue/{task}/dev32.jsonl") == 32
    for task, n in {"COPA": 400, "MultiRC": 456, "WSC": 554, "WiC": 5428}.items():
        assert _lines(out / f"fewglue/{task}/unlabeled.jsonl") == n
    mrc = _rows(out / "superglue/MultiRC/val.jsonl")
    questions = [q for r in mrc for q in r["passage"]["questions"]]
    assert (len(questions), sum(len(q["answers"]) for q in questions)) == (953, 4848)
    assert counts["superglue"]["superglue/MultiRC/val answers"] == 4848
    assert not (out / "superglue/ReCoRD/val.jsonl").exists() and not (out / "superglue/BoolQ/train.jsonl").exists()
    assert counts["superglue"]["superglue/ReCoRD/val"] is None


def test_superglue_labels_and_added_fields(prepared):
    out, _ = prepared
    boolq = _rows(out / "superglue/BoolQ/val.jsonl")
    assert {type(r["label"]) for r in boolq} == {bool} and sum(r["label"] for r in boolq) == 2033
    copa = _rows(out / "fewglue/COPA/train.jsonl")
    assert {type(r["label"]) for r in copa} == {int}
    assert {r["label"] for r in _rows(out / "superglue/CB/val.jsonl")} == {"entailment", "contradiction", "neutral"}
    wic = _rows(out / "superglue/WiC/train.jsonl")[0]
    assert (wic["task"], wic["split"], wic["word"], wic["label"]) == ("WiC", "train", "place", False)
    assert _rows(out / "fewglue/WSC/unlabeled.jsonl")[0]["split"] == "unlabeled"
    assert "label" not in _rows(out / "fewglue/WSC/unlabeled.jsonl")[0]
    assert {r["split"] for r in _rows(out / "fewglue/RTE/dev32.jsonl")} == {"dev32"}


def test_lm_bff_counts(prepared):
    out, counts = prepared
    assert counts["lm_bff"]["status"] == "built"
    for seed in lm_bff.SEEDS:
        sst = out / f"lm-bff/SST-2/16-{seed}"
        assert [_lines(sst / f"{s}.jsonl") for s in ("train", "dev", "test")] == [32, 32, 872]
        snli = out / f"lm-bff/SNLI/16-{seed}"
        assert [_lines(snli / f"{s}.jsonl") for s in ("train", "dev")] == [48, 48]
        assert not (snli / "test.jsonl").exists()
    assert _rows(out / "lm-bff/SST-2/16-13/train.jsonl")[0] == {
        "sentence": "nothing happens , and it happens to flat characters .", "label": 0}
    snli = _rows(out / "lm-bff/SNLI/16-13/train.jsonl")[0]
    assert snli == {"premise": "The girl sitting by a rock is wearing a black coat, black hat, black gloves but is "
                               "covered by a pink blanket.", "hypothesis": "a girl wears black", "label": "entailment"}
    test = _rows(out / "lm-bff/SNLI/test_esnli.jsonl")  # e-SNLI's copy: variant k16_esnli only
    assert len(test) == 9824 and test[0] == {"premise": "This church choir sings to the masses as they sing joyous "
                                             "songs from the book at a church .",
                                             "hypothesis": "The church has cracks in the ceiling .", "label": "neutral"}
    # LM-BFF's SNLI test set (SNLI 1.0 dev, raw) is not in the mirror: not written, a known gap naming the fetch
    assert not (out / "lm-bff/SNLI/test.jsonl").exists()
    gaps = json.loads((out / "lm-bff/MANIFEST.json").read_text())["known_gaps"]
    assert [g["output"] for g in gaps] == ["lm-bff/SNLI/test.jsonl"] and "--full --download" in gaps[0]["reason"]


def test_second_run_is_up_to_date_and_rewrites_nothing(prepared, capsys):
    out, _ = prepared
    before = _mtimes(out)
    started = time.time()
    results = {name: mod.prepare(MIRROR, out) for name, mod in FAMILIES.items()}
    assert time.time() - started < 2.0
    assert {r["status"] for r in results.values()} == {"up to date"}
    assert results["lama"]["facts/original test"] == 34_038
    assert capsys.readouterr().out.count("up to date") == 3
    assert _mtimes(out) == before


def _copy_mirror(tmp: Path, *parts: str) -> Path:
    mirror = tmp / "mirror"
    for part in parts:
        shutil.copytree(MIRROR / part, mirror / part)
    return mirror


def test_malformed_jsonl_names_file_line_field(tmp_path):
    mirror = _copy_mirror(tmp_path, "fewglue", "superglue")
    bad = mirror / "fewglue/FewGLUE_32dev/CB/val.jsonl"
    lines = bad.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[2])
    del row["premise"]
    lines[2] = json.dumps(row) + "\n"
    bad.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as info:
        superglue.prepare(mirror, tmp_path / "out", quiet=True)
    err = info.value
    assert (Path(err.file), err.line, err.field) == (bad, 3, "premise")
    assert f"{bad}:3 (field 'premise')" in str(err) and "--mirror" in str(err)
    assert not (tmp_path / "out/superglue/MANIFEST.json").exists()


def test_bad_label_and_bad_json(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "lama").mkdir(parents=True)
    good = (MIRROR / "lama/relations.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (mirror / "lama/relations.jsonl").write_text(good[0] + "{not json\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        lama.prepare(mirror, tmp_path / "out", quiet=True)
    assert (info.value.line, Path(info.value.file).name) == (2, "relations.jsonl")

    mirror = _copy_mirror(tmp_path / "b", "lm-bff")
    bad = mirror / "lm-bff/k-shot/SST-2/16-13/train.tsv"
    lines = bad.read_text(encoding="utf-8").split("\n")
    lines[4] = lines[4].rsplit("\t", 1)[0] + "\tpositive"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as info:
        lm_bff.prepare(mirror, tmp_path / "b/out", quiet=True)
    assert (Path(info.value.file), info.value.line, info.value.field) == (bad, 5, "label")


def test_missing_source_file_says_how_to_fix(tmp_path):
    mirror = _copy_mirror(tmp_path, "lm-bff")
    (mirror / "lm-bff/snli_test_esnli/s2.test").unlink()
    with pytest.raises(DataError) as info:
        lm_bff.prepare(mirror, tmp_path / "out", quiet=True)
    assert "s2.test" in str(info.value) and "not found" in str(info.value) and "--mirror" in str(info.value)


def test_count_mismatch_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setitem(lm_bff.EXPECTED, "SNLI test (e-SNLI)", 10_000)
    with pytest.raises(CountMismatch, match="SNLI/test_esnli: expected 10000, got 9824"):
        lm_bff.prepare(MIRROR, tmp_path, quiet=True)
    assert not (tmp_path / "lm-bff/MANIFEST.json").exists()
    from data_prep.__main__ import main

    assert main(["lm_bff", "--mirror", str(MIRROR), "--out", str(tmp_path), "--quiet"]) == 1
    monkeypatch.undo()
    assert main(["lm-bff", "--mirror", str(MIRROR), "--out", str(tmp_path), "--quiet"]) == 0
    assert json.loads((tmp_path / "lm-bff/MANIFEST.json").read_text())["counts"]["SNLI/test_esnli"]["got"] == 9824


def test_fetch_verifies_checksum(tmp_path):
    src = MIRROR / "lm-bff/snli_test_esnli/labels.test"
    digest = sha256_file(src)
    dest = fetch(src.as_uri(), digest, tmp_path / "cache/labels.test")
    assert sha256_file(dest) == digest
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(src.as_uri(), "0" * 64, tmp_path / "cache/other.test")
    assert not (tmp_path / "cache/other.test").exists()


def _serve_from_mirror(monkeypatch, upstreams) -> list[str]:
    """Patch urlopen so canonical URLs are answered from the mirror; return the list of URLs served."""
    served: list[str] = []

    def fake_urlopen(url: str, timeout: float = 0):
        for up in upstreams:
            base = up.url(up.prefix)
            if base and url.startswith(base):
                served.append(url)
                return (MIRROR / (up.prefix + url[len(base):])).open("rb")
        raise OSError(f"unexpected URL {url}")

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    return served


def test_download_mode_matches_mirror_build(prepared, tmp_path, monkeypatch):
    """--download fetches canonical URLs (served here from the mirror) and verifies SHA256SUMS."""
    out, _ = prepared
    served = _serve_from_mirror(monkeypatch, lm_bff.UPSTREAMS)
    result = lm_bff.prepare(None, tmp_path, download=True, quiet=True)
    assert result["SNLI/test_esnli"] == 9824 and len(served) == 28
    assert "https://raw.githubusercontent.com/OanaMariaCamburu/e-SNLI/7b585a3f077fdea899780eb0473940522ae44a2e/" \
           "dataset/eSNLI/s1.test" in served
    mine = json.loads((tmp_path / "lm-bff/MANIFEST.json").read_text())
    ref = json.loads((out / "lm-bff/MANIFEST.json").read_text())
    assert mine["outputs"] == ref["outputs"] and mine["mode"] == "download"
    assert all(s["pinned_sha256_match"] is True for s in mine["sources"])
    assert lm_bff.prepare(None, tmp_path, download=True, quiet=True)["status"] == "up to date"
    (tmp_path / "_downloads/lm-bff/snli_test_esnli/labels.test").write_text("tampered\n")
    assert lm_bff.prepare(None, tmp_path, download=True, quiet=True)["status"] == "built"  # bad cache re-fetched
    assert served[-1].endswith("/labels.test") and len(served) == 29


def test_download_checksum_mismatch_fails(tmp_path, monkeypatch):
    _serve_from_mirror(monkeypatch, lm_bff.UPSTREAMS)
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(lm_bff.FAMILY.sums_file.read_text().replace(
        sha256_file(MIRROR / "lm-bff/k-shot/SST-2/16-13/train.tsv"), "0" * 64))
    monkeypatch.setattr(lm_bff, "FAMILY", dataclasses.replace(lm_bff.FAMILY, sums_file=sums))
    with pytest.raises(DataError, match="checksum mismatch") as info:
        lm_bff.prepare(None, tmp_path, download=True, quiet=True)
    assert str(info.value).startswith("https://raw.githubusercontent.com/ZhengxiangShi/PowerfulPromptFT/")


def test_download_mode_refuses_derived_files(tmp_path, monkeypatch):
    _serve_from_mirror(monkeypatch, superglue.UPSTREAMS)
    with pytest.raises(DataError, match="derived file with no public URL") as info:
        superglue.prepare(None, tmp_path, download=True, quiet=True)
    assert "superglue/WiC/train.jsonl" in str(info.value) and "--mirror" in str(info.value)
