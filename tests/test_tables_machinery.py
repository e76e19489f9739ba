"""Record frames (schema 1 and 2), configuration grids, protocol notes, bad records, filters, spec errors, LaTeX."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tables_fixture import record, save

from bench.errors import DataError
from bench.tables import build_table, load_published, load_spec, read_frames
from bench.tables.__main__ import main
from bench.tables.notes import protocol_notes
from bench.tables.render import latex_escape, to_latex
from bench.tables.spec import TABLES_DIR, load_rules

GOLDEN_PUBLISHED = Path(__file__).resolve().parent / "golden" / "published.csv"
FOLLOWS = {"task": {"relations": ["P17"], "protocol": "reference"}, "model": {}, "method": {}}  # as the LAMA presets


def _spec(name: str = "lama34k", **changes) -> dict:
    raw = yaml.safe_load((TABLES_DIR / f"{name}.yaml").read_text())
    raw.update(changes)
    path = TABLES_DIR / f"{name}.yaml"
    from bench.tables.spec import check_spec

    return check_spec(raw, path)


def test_schema_1_and_2_read_into_the_same_fields(tmp_path):
    runs = tmp_path / "runs"
    save(runs, record("lama", "tiny-bert", "manual", "pararel-r3", {"P17": 0.5}, config=FOLLOWS))
    save(runs, record("lama", "tiny-bert", "manual", "pararel", {"P17": 0.25}, schema=2, rank=2,
                      config_hash="0123abcd", config=FOLLOWS))
    frames = read_frames(runs)
    rows = frames.records[frames.records["split"] == "test"].set_index("rank")
    assert rows.loc[3, "template"] == rows.loc[2, "template"] == "pararel"
    assert rows.loc[3, "template_rank"] == "pararel-r3" and rows.loc[2, "config_hash"] == "0123abcd"
    assert rows.loc[3, "overall.macro_over_relations"] == 0.5 and pd.isna(rows.loc[3, "config_hash"])
    assert set(frames.groups["group"]) == {"P17"} and set(frames.groups["p_at_1"]) == {0.5, 0.25}


def test_configs_are_never_averaged_silently_and_a_grid_picks_by_the_selection_split(tmp_path):
    runs = tmp_path / "runs"
    for config_hash, test, dev in (("aaaa0001", 0.6, 0.2), ("aaaa0002", 0.4, 0.3)):
        save(runs, record("lama", "tiny-bert", "ptuning", "ptuning_lama", {"P17": test}, schema=2,
                          config_hash=config_hash, config=FOLLOWS, dev=dev))
    frames = read_frames(runs)
    table = build_table(_spec(grid=None), frames, None)
    assert table.display.set_index("Model").loc["tiny-bert", "P-Tuning"] == "50.0‡"
    assert any(n.startswith("‡") and "tiny-bert x P-Tuning: config aaaa0001; config aaaa0002" in n for n in table.notes)
    grid = {"select": "max", "metric": "overall.macro_over_relations", "split": "selection"}
    table = build_table(_spec(grid=grid), frames, None)
    assert table.display.set_index("Model").loc["tiny-bert", "P-Tuning"] == "40.0"  # dev 0.3 > 0.2
    tidy = table.tidy
    assert list(tidy["selected"]) == [True, False] and list(tidy["config_hash"]) == ["aaaa0002", "aaaa0001"]
    assert tidy.iloc[1]["value"] == pytest.approx(60.0)
    assert any("configuration with the max" in n for n in table.notes)


def test_no_records_and_no_published_numbers_write_nothing(tmp_path):
    from bench.tables.__main__ import build_all

    (tmp_path / "runs").mkdir()
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "published.csv").write_text("table,variant,model,column,value,source,checked,note\n")
    written, problems = build_all(tmp_path, tmp_path / "tables", published_dir=paper)
    assert written == [] and problems == []


def test_protocol_and_training_facts_get_their_own_rows_and_a_note(tmp_path):
    runs = tmp_path / "runs"
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    paper = {"task": {"relations": ["P17"], "protocol": "paper", "train_facts": "original_rob"},
             "model": {}, "method": {"name": "manual"}}
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.1}, config=paper, schema=2,
                      config_hash="pap00000"))
    table = build_table(_spec(), read_frames(runs), load_published(GOLDEN_PUBLISHED))
    shown = table.display.set_index("Model")
    assert shown.loc["bert-base-cased", "Manual"] == "50.0"
    assert shown.loc["bert-base-cased (protocol paper, train facts original_rob)", "Manual"] == "10.0†"
    assert shown.loc["bert-base-cased (protocol paper, train facts original_rob)", "Manual (paper)"] == "—"
    assert any("protocol 'paper'" in n for n in table.notes)
    assert any("training facts 'original_rob'" in n for n in table.notes)


def test_ptuning_schedule_departures_are_noted():
    rules = load_rules("lama_protocol", TABLES_DIR / "lama34k.yaml", "protocol_notes")

    def rec(lr, epochs, patience):
        trainer = {"lr": lr, "max_epochs": epochs, "early_stopping_patience": patience}
        return {"config": {"method": {"name": "ptuning"}, "trainer": trainer, "task": {"protocol": "reference"},
                           "model": {}}}

    assert protocol_notes(rec(1e-5, 100, 20), rules) == []
    (note,) = protocol_notes(rec(1e-3, 5, 2), rules)
    assert note.startswith("P-Tuning schedule lr 0.001, at most 5 epochs, patience 2")
    tuned = rec(1e-5, 100, 20)
    tuned["config"]["method"]["component"] = {"tunes_backbone": True}
    assert protocol_notes(tuned, rules) == ["the backbone is tuned too (the paper's LAMA P-Tuning keeps it frozen)"]
    selected = {**rec(1e-5, 100, 20), "protocol": {"selection_split": "test"}}
    assert protocol_notes(selected, rules) == ["checkpoints / prompts selected on the test split, not dev"]


def test_a_corrupted_record_is_reported_once_and_skipped(tmp_path, capsys):
    runs = tmp_path / "runs"
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    (runs / "lama" / "broken.json").write_text("{not json")
    (runs / "lama" / "partial.json").write_text('{"name": "x", "spec": {"task": "lama"}}')
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "tables")]) == 0
    err = capsys.readouterr().err
    assert err.count("broken.json") == 1 and "not valid JSON" in err
    assert "partial.json: lacks the key(s) metrics" in err and "fix:" in err
    assert (tmp_path / "tables" / "lama34k.md").is_file() and (tmp_path / "tables" / "sensitivity_p17.csv").is_file()


def test_filters_keep_only_the_named_models_and_tags(tmp_path):
    runs = tmp_path / "runs"
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    save(runs, record("lama", "tiny-bert", "manual", "lama", {"P17": 0.2}, config=FOLLOWS, tag="smoke"))
    out = tmp_path / "tables"
    main(["--results", str(tmp_path), "--out", str(out), "--tags", "smoke", "--only", "lama34k"])
    text = (out / "lama34k.md").read_text()
    assert "tiny-bert [smoke]" in text and "| bert-base-cased | 50.0" not in text
    main(["--results", str(tmp_path), "--out", str(out), "--models", "bert-base-cased", "--tags", "none",
          "--only", "lama34k"])
    text = (out / "lama34k.md").read_text()
    assert "| bert-base-cased | 50.0" in text and "tiny-bert" not in text
    assert "| bert-large-cased | — | 32.3 |" in text  # the paper's rows stay whatever models ran (published.all_models)
    assert sorted(p.name for p in out.iterdir()) == ["lama34k.csv", "lama34k.md", "lama34k.tex"]


def test_spec_errors_name_the_file_the_key_and_the_fix(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ntitle: T\nvalue: {metric: overall.pooled}\ncolumns: [{key: a, colour: red}]\n")
    with pytest.raises(DataError) as err:
        load_spec(bad)
    assert "bad.yaml" in str(err.value) and "columns[0].colour" in str(err.value) and "fix:" in str(err.value)
    bad.write_text("name: t\ntitle: T\ncolumns: [{key: a}]\n")
    with pytest.raises(DataError, match="value.metric"):
        load_spec(bad)
    bad.write_text("name: t\ntitle: T\nvalue: {metric: m}\ncolumns: [{key: a, select: {}}]\nderived: [{key: d, minus: [a, z]}]\n")
    with pytest.raises(DataError, match="minus needs two column keys"):
        load_spec(bad)
    bad.write_text("name: t\ntitle: T\nvalue: {metric: m}\ncolumns: [{key: a}]\n")
    with pytest.raises(DataError, match="needs a select"):
        load_spec(bad)
    bad.write_text("name: [t\n")
    with pytest.raises(DataError, match="not valid YAML"):
        load_spec(bad)


def test_latex_escapes_specials_and_marks_and_goes_wide(tmp_path):
    assert latex_escape("a_b & 50% #1 $x") == r"a\_b \& 50\% \#1 \$x"
    assert latex_escape("PT−MP Δ 1.0† 2.0*") == r"PT$-$MP $\Delta$ 1.0$^\dagger$ 2.0$^*$"
    assert latex_escape("[X] is in [Y] .") == "{[}X{]} is in {[}Y{]} ."
    runs = tmp_path / "runs"
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    table = build_table(_spec("lama29k", select={"task": "lama", "variant": "lama34k"}), read_frames(runs),
                        load_published(GOLDEN_PUBLISHED))
    latex = to_latex(table)
    assert latex.isascii() and r"\begin{table*}[t]" in latex and "PT$-$MP" in latex  # "ours / paper (Δ)" cells
    assert latex.count("{") == latex.count("}")
    per_relation = build_table(_spec("lama34k_per_relation"), read_frames(runs), None)
    per_relation.wide = True
    assert r"\begin{table*}" in to_latex(per_relation)
    blocks = latex.split("\\begin{tabular}{")[1:]  # column blocks: each row has one cell per block column
    assert sum(len(b.split("}")[0]) - 1 for b in blocks) == len(table.display.columns) - 1
    for block in blocks:
        body = [line for line in block.splitlines() if line.endswith(r"\\") and "&" in line]
        assert body and all(len(re.findall(r"(?<!\\)&", line)) == len(block.split("}")[0]) - 1 for line in body)


def test_a_filter_that_matches_nothing_stops_naming_the_known_values(tmp_path, capsys):
    runs = tmp_path / "runs"
    save(runs, record("lama", "tiny-bert", "manual", "lama", {"P17": 0.2}, config=FOLLOWS, tag="smoke"))
    out = tmp_path / "tables"
    assert main(["--results", str(tmp_path), "--out", str(out), "--tags", "smok"]) == 2
    err = capsys.readouterr().err
    assert "--tags smok matches nothing; known values: smoke" in err
    assert main(["--results", str(tmp_path), "--out", str(out), "--models", "tiny-bret,tiny-bert"]) == 2
    assert "--models tiny-bret matches nothing; known values: tiny-bert" in capsys.readouterr().err
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    assert main(["--results", str(tmp_path), "--out", str(out), "--models", "tiny-bert", "--tags", "none"]) == 2
    assert "keeps no record" in capsys.readouterr().err  # each value matches, the two together nothing
    assert main(["--results", str(tmp_path), "--out", str(out), "--only", "lama34", "--study", "lama"]) == 2
    assert "--only lama34 matches nothing" in capsys.readouterr().err
    assert main(["--results", str(tmp_path), "--out", str(out), "--study", "lmbf"]) == 2
    assert "known values: fewglue, lama, lama_options, lester, lmbff, superglue, superglue_frozen" in capsys.readouterr().err
    assert not out.exists()  # nothing was rewritten


def test_a_study_rebuilds_its_own_tables_only(tmp_path):
    """make reproduce-superglue MODELS=tiny-bert must not rebuild the LM-BFF tables filtered to tiny-bert."""
    from tables_fixture import kshot_record

    runs = tmp_path / "runs"
    save(runs, kshot_record("sst2", "tiny-roberta", "pet", "lmbff_sst2", 0.9, 0.8, tag="smoke"))
    save(runs, record("lama", "tiny-bert", "manual", "lama", {"P17": 0.2}, config=FOLLOWS, tag="smoke"))
    out = tmp_path / "tables"
    assert main(["--results", str(tmp_path), "--out", str(out)]) == 0
    before = (out / "lmbff_table1_sst2.md").read_text()
    assert "tiny-roberta [smoke]" in before
    assert main(["--results", str(tmp_path), "--out", str(out), "--study", "lama", "--models", "tiny-bert"]) == 0
    assert (out / "lmbff_table1_sst2.md").read_text() == before  # another study's table is untouched
    assert "tiny-bert [smoke]" in (out / "lama34k.md").read_text()
    for path in sorted(TABLES_DIR.glob("*.yaml")):  # every spec belongs to a study
        assert all(s["study"] for s in load_spec(path)), path.name


def test_a_spec_names_only_studies_that_exist(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ntitle: T\nstudy: [lamma]\nvalue: {metric: m}\ncolumns: [{key: a, select: {}}]\n")
    with pytest.raises(DataError, match="no study 'lamma'") as err:
        load_spec(bad)
    assert "bad.yaml (field 'study')" in str(err.value) and "fix: list studies" in str(err.value)


def test_an_unwritable_output_folder_is_one_error_not_a_traceback(tmp_path, capsys, monkeypatch):
    """Issue 27 Found 8: a read-only results/ gave a 26-line traceback from bench.tables."""
    from bench.tables import figures

    save(tmp_path / "runs", record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be")  # unwritable even for root
    assert main(["--results", str(tmp_path), "--out", str(blocker / "tables")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: cannot write to ") and "Not a directory" in err[0]
    assert err[1].startswith("  fix: pass --out a writable folder") and len(err) == 2

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "figures"))

    monkeypatch.setattr(figures, "write_figures", read_only)
    assert figures.main(["--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: cannot write to {tmp_path / 'figures'} (Permission denied)",
                   f"  fix: pass --out a writable folder (or BENCH_RESULTS_DIR / --results), or fix the permissions "
                   f"of {tmp_path / 'figures'}"]


def test_published_numbers_stay_when_runs_are_written_elsewhere(tmp_path, monkeypatch):
    """BENCH_RESULTS_DIR moves runs/ and tables/, not the committed published numbers (results/paper/)."""
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    save(tmp_path / "runs", record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "tables"), "--only", "sensitivity_p17"]) == 0
    table = (tmp_path / "tables" / "sensitivity_p17.md").read_text()
    assert "51.08" in table  # results/paper/published.csv: "[X] is located in which country? In [Y] ." (Table 1)
