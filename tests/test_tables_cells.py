"""Issue 27, Found 5 and 6: rows, columns and labels keyed by any config key; spec errors naming file, key and fix;
the ‡ note's config ids equal the hashes ending record names (what ``bench.study status`` prints); a missing seed,
a missing grid point and a truncated record mark their cell."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from tables_fixture import kshot_record, save

from bench.errors import DataError
from bench.identity import config_hash
from bench.tables import build_table, load_spec, read_frames
from bench.tables.gaps import parse_name
from bench.tables.spec import TABLES_DIR

SPEC = """# one row per learning rate
name: lr_sweep
title: CB accuracy per learning rate
study: [superglue]
select: {task: cb}
value: {metric: overall.accuracy, scale: 100, digits: 1}
rows:
  by: [model, trainer.lr]
  labels: {Run: "{model} lr={trainer.lr}"}
columns:
  - {key: acc, label: Acc, select: {}, show: "{mean} ({n})"}
"""


def _sweep_record(lr: float, seed: int, accuracy: float) -> dict:
    """A record as bench.run writes it: the config hash is bench.identity.config_hash of its resolved config."""
    config = {"task": {"name": "cb"}, "model": {"name": "tiny-bert"}, "method": {"name": "pet"},
              "template": {"name": "pet_cb", "rank": 0}, "trainer": {"lr": lr, "max_steps": 2}, "seed": seed}
    rec = kshot_record("cb", "tiny-bert", "pet", "pet_cb", accuracy, accuracy, seed=seed, config_hash=config_hash(config))
    rec["config"] = config
    return rec


@pytest.fixture
def sweep(tmp_path) -> Path:
    """``trainer.lr=1e-4,1e-3,1e-2`` x seeds 1-3: accuracy = lr index / 10 + seed / 100 (by hand below)."""
    runs = tmp_path / "runs"
    for i, lr in enumerate((1e-4, 1e-3, 1e-2)):
        for seed in (1, 2, 3):
            save(runs, _sweep_record(lr, seed, i / 10 + seed / 100))
    return runs


def test_rows_and_labels_may_use_any_config_key(sweep, tmp_path):
    (tmp_path / "lr_sweep.yaml").write_text(SPEC)
    (spec,) = load_spec(tmp_path / "lr_sweep.yaml")
    table = build_table(spec, read_frames(sweep))
    shown = dict(zip(table.display["Run"], table.display["Acc"], strict=True))
    # seeds 1-3 average to +2 points: 2.0, 12.0, 22.0; three seeds each; no ‡ (one configuration per row)
    assert shown == {"tiny-bert lr=0.0001": "2.0 (3)", "tiny-bert lr=0.001": "12.0 (3)", "tiny-bert lr=0.01": "22.0 (3)"}
    assert not any(n.startswith("‡") for n in table.notes)
    (spec,) = load_spec(tmp_path / "lr_sweep.yaml")
    spec["select"] = {"task": "cb", "trainer.lr": 0.001}  # selects on a config key too
    assert list(build_table(spec, read_frames(sweep)).display["Run"]) == ["tiny-bert lr=0.001"]


def test_a_config_key_no_record_has_names_the_file_the_key_and_the_fix(sweep, tmp_path):
    (tmp_path / "lr_sweep.yaml").write_text(SPEC.replace("by: [model, trainer.lr]", "by: [model, trainer.lrr]"))
    (spec,) = load_spec(tmp_path / "lr_sweep.yaml")
    with pytest.raises(DataError) as err:
        build_table(spec, read_frames(sweep))
    text = str(err.value)
    assert "lr_sweep.yaml (field 'rows.by')" in text and "'trainer.lrr'" in text and "fix: use a record field" in text
    (tmp_path / "lr_sweep.yaml").write_text(SPEC.replace("{trainer.lr}", "{trainer.lrr}"))
    (spec,) = load_spec(tmp_path / "lr_sweep.yaml")
    with pytest.raises(DataError, match="field 'rows.labels.Run'"):
        build_table(spec, read_frames(sweep))


def test_the_double_dagger_note_lists_the_ids_bench_study_status_prints(sweep, tmp_path, capsys):
    from bench.study import all_records_status

    (tmp_path / "lr_sweep.yaml").write_text(SPEC.replace("by: [model, trainer.lr]", "by: [model]"))
    (spec,) = load_spec(tmp_path / "lr_sweep.yaml")
    table = build_table(spec, read_frames(sweep))
    assert table.display["Acc"].tolist() == ["12.0 (9)‡"]  # nine records averaged: (2 + 12 + 22) / 3
    (note,) = [n for n in table.notes if n.startswith("‡")]
    ids = {json.loads(p.read_text())["spec"]["config_hash"] for p in sweep.rglob("*.json")}
    assert len(ids) == 9 and all(i in note for i in ids)
    assert "trainer.lr=0.0001 (config " in note and "trainer.lr=0.01 (config " in note
    all_records_status(tmp_path)
    printed = capsys.readouterr().out
    assert all(f"__{i}" in printed for i in ids)  # the same ids end the names status prints
    tidy = table.tidy
    assert set(tidy["config_hash"].iloc[0].split(";")) == ids


def _lmbff_spec() -> dict:
    (spec,) = load_spec(TABLES_DIR / "lmbff_table1_sst2.yaml")
    return copy.deepcopy(spec)


def _grid(runs: Path, model: str, points: dict[int, list[tuple[str, float, float]]]) -> list[Path]:
    return [save(runs, kshot_record("sst2", model, "pet", "lmbff_sst2", test, dev, seed=seed, config_hash=h))
            for seed, rows in points.items() for h, dev, test in rows]


def test_a_missing_seed_or_grid_point_marks_the_cell(tmp_path):
    runs = tmp_path / "runs"
    full = [("aaaa0001", 0.8, 0.9), ("bbbb0002", 0.7, 0.5)]
    _grid(runs, "roberta-large", {13: full, 21: full})
    _grid(runs, "roberta-base", {13: full})  # seed 21 never ran
    _grid(runs, "bert-large-cased", {13: full, 21: full[1:]})  # seed 21 lacks grid point aaaa0001
    table = build_table(_lmbff_spec(), read_frames(runs))
    cells = table.display.set_index("Model")["great/terrible"]
    assert cells["roberta-large"] == "90.0 (0.0)"  # each seed keeps aaaa0001 (dev 0.8): 90, 90
    assert cells["roberta-base"] == "90.0 (—)§"
    assert cells["bert-large-cased"] == "70.0 (20.0)§"  # 90 (seed 13), 50 (seed 21: only point bbbb0002)
    (note,) = [n for n in table.notes if n.startswith("§")]
    assert "roberta-base x great/terrible: seed 21 missing (1 of 2 seeds)" in note
    assert "bert-large-cased x great/terrible: 1 of 2 grid points for seed 21" in note


def test_a_truncated_record_marks_the_cell_it_would_have_filled(tmp_path, capsys):
    runs = tmp_path / "runs"
    paths = _grid(runs, "roberta-large", {13: [("aaaa0001", 0.8, 0.9), ("bbbb0002", 0.9, 0.5)]})
    text = paths[1].read_text()
    paths[1].write_text(text[: len(text) // 2])  # the better grid point (dev 0.9) is cut off mid-write
    table = build_table(_lmbff_spec(), read_frames(runs))
    assert table.display.set_index("Model").loc["roberta-large", "great/terrible"] == "90.0 (—)§"
    (note,) = [n for n in table.notes if n.startswith("§")]
    assert f"record {paths[1].name} unreadable (not valid JSON" in note
    assert parse_name(paths[1].stem) == {"task": "sst2", "variant": "k16", "model": "roberta-large", "method": "pet",
                                         "template": "lmbff_sst2", "rank": 0, "seed": 13, "tag": None,
                                         "config_hash": "bbbb0002"}
    # a record that fits no cell yet (its model has no other record) is named in a table note
    save(runs, kshot_record("sst2", "gpt2", "pet", "lmbff_sst2", 0.6, 0.6, seed=13, config_hash="cccc0003"))
    lost = next(runs.rglob("*gpt2*cccc0003.json"))
    lost.write_text("{")
    table = build_table(_lmbff_spec(), read_frames(runs))
    assert any(n.startswith("§ unreadable records that may belong") and lost.name in n for n in table.notes)


def test_malformed_labels_and_show_formats_name_the_file_the_key_and_the_fix(tmp_path):
    bad = tmp_path / "lr_sweep.yaml"
    bad.write_text(SPEC.replace('"{model} lr={trainer.lr}"', '"{model lr"'))
    with pytest.raises(DataError) as err:
        load_spec(bad)
    assert "lr_sweep.yaml (field 'rows.labels.Run')" in str(err.value) and "fix: close every {field} brace" in str(err.value)
    bad.write_text(SPEC.replace('show: "{mean} ({n})"', 'show: "{meen}"'))
    with pytest.raises(DataError, match=r"field 'columns\[0\].show'\): unknown statistic \{meen\}"):
        load_spec(bad)


def test_grids_of_different_presets_are_not_compared(tmp_path):
    """A preset fixes its grid: a model whose preset has fewer grid points is not marked against another's."""
    runs = tmp_path / "runs"
    for model, preset, points in (("roberta-large", "big_grid", ["aaaa0001", "bbbb0002"]),
                                  ("bert-large-cased", "small_grid", ["cccc0003"])):
        for h in points:
            rec = kshot_record("sst2", model, "pet", "lmbff_sst2", 0.9, 0.8, seed=13, config_hash=h)
            rec["spec"]["preset"] = preset
            save(runs, rec)
    table = build_table(_lmbff_spec(), read_frames(runs))
    assert not any(n.startswith("§") for n in table.notes)
    assert table.display.set_index("Model").loc["bert-large-cased", "great/terrible"] == "90.0 (—)"
