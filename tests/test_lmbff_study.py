"""End to end: the LM-BFF study on tiny-roberta (smoke setting, shortened further) leaves records, the
tables with the published numbers beside ours, and the per-split chart."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_lmbff_study_smoke_leaves_records_tables_and_chart(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the study's subprocess: tiny models run faster on one thread
    from bench.study import main as study
    from bench.tables.__main__ import main as tables
    from bench.tables.figures import main as figures

    overrides = [f"paths.results_dir={tmp_path}", "grid_limit=1", "++sweep.ranks=[0,4]", "trainer.max_steps=2",
                 "trainer.eval_every=1", "task.limit=8"]
    code = study(["run", "lmbff", "--models", "tiny-roberta", "--presets", "lmbff_sst2_prompt,lmbff_sst2_zeroshot",
                  *overrides])
    assert code == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("*.json")]
    assert len(records) == 5 * 2 * 2  # 5 splits x 2 presets x ranks 0 and 4
    assert {r["spec"]["seed"] for r in records} == {13, 21, 42, 87, 100}
    assert all(r["spec"]["tag"] == "smoke" and r["protocol"]["report_split"] == "test" for r in records)
    out = tmp_path / "tables"
    assert tables(["--results", str(tmp_path), "--out", str(out), "--only", "lmbff_table1_sst2,lmbff_main",
                   "--models", "tiny-roberta"]) == 0  # as make reproduce-lmbff MODELS=tiny-roberta builds them
    table1 = (out / "lmbff_table1_sst2.md").read_text()
    assert "| tiny-roberta [smoke] |" in table1  # ours, and the paper's numbers (published.all_models):
    assert "| roberta-large | — / 92.7 (—) | — / 92.5 (—) | — / 91.5 (—) | — / 86.2 (—) | — / 83.2 (—) |" in table1
    assert (out / "lmbff_table1_sst2.csv").is_file() and (out / "lmbff_main.md").is_file()
    assert figures(["--results", str(tmp_path), "--out", str(tmp_path / "figures"), "--only", "lmbff_splits"]) == 0
    assert (tmp_path / "figures" / "lmbff_splits_tiny-roberta_smoke.png").is_file()
