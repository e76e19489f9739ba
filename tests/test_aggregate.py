"""Tables are built from records only; published numbers sit beside ours; missing cells are named."""

import pandas as pd
import pytest

from bench.aggregate.lama_tables import write_lama_tables
from bench.records import RunSpec, record_path, write_record


def _record(tmp_path, model, template, macro, pooled, method="manual", variant="lama34k"):
    spec = RunSpec("lama", model, method, template, 34, variant=variant)
    metrics = {"test": {"overall": {"macro_over_relations": macro, "pooled": pooled, "n_facts": 10,
                                    "n_relations": 2},
                        "groups": {"P17": {"n": 5, "hits": 2, "p_at_1": 0.4, "n_reconstructed": 5},
                                   "P19": {"n": 5, "hits": 3, "p_at_1": 0.6, "n_reconstructed": 0}},
                        "subsets": {"real_only": {"macro_over_relations": 0.6, "pooled": 0.6}}},
               "dev": {"overall": {"macro_over_relations": 0.9, "pooled": 0.9}}}
    write_record(record_path(tmp_path / "runs", spec), spec,
                 {"metrics": metrics, "selection_split": "dev", "report_split": "test", "params": {"trainable": 0}})


def test_lama34k_table_has_ours_paper_and_delta(tmp_path):
    published = tmp_path / "published.csv"
    published.write_text("table,variant,model,column,value,source,checked,note\n"
                         "lama,lama34k,bert-base-cased,lama,31.1,paper,yes,\n"
                         "lama,lama34k,bert-large-cased,lama,32.3,paper,yes,\n")
    _record(tmp_path, "bert-base-cased", "lama", 0.5, 0.5)
    _record(tmp_path, "tiny-gpt2", "lama", 0.25, 0.3)
    written = write_lama_tables(tmp_path / "runs", tmp_path / "tables", published)
    names = sorted(p.name for p in written)
    assert names == sorted(["lama34k.md", "lama34k.tex", "lama34k.csv", "lama34k_per_relation.md",
                            "lama34k_per_relation.tex", "lama34k_per_relation.csv"])
    tidy = pd.read_csv(tmp_path / "tables" / "lama34k.csv")
    base = tidy[tidy["model"] == "bert-base-cased"].iloc[0]
    assert base["ours"] == pytest.approx(50.0) and base["paper"] == pytest.approx(31.1)
    assert base["delta"] == pytest.approx(18.9) and base["ours_real_only"] == pytest.approx(60.0)
    markdown = (tmp_path / "tables" / "lama34k.md").read_text()
    assert "| bert-base-cased | 50.0 | 31.1 | +18.9 |" in markdown
    assert "| bert-large-cased | — | 32.3 | — |" in markdown  # the paper has it, we have no run
    assert "missing: bert-large-cased x lama" in markdown
    assert "| tiny-gpt2 | 25.0 | — | — |" in markdown
    latex = (tmp_path / "tables" / "lama34k.tex").read_text()
    assert r"\toprule" in latex and "tiny-gpt2 & 25.0" in latex
    per_rel = pd.read_csv(tmp_path / "tables" / "lama34k_per_relation.csv")
    assert per_rel.set_index("relation").loc["P17", "bert-base-cased / lama"] == pytest.approx(40.0)


def test_no_records_writes_nothing(tmp_path):
    published = tmp_path / "published.csv"
    published.write_text("table,variant,model,column,value,source,checked,note\n")
    (tmp_path / "runs").mkdir()
    assert write_lama_tables(tmp_path / "runs", tmp_path / "tables", published) == []


def test_majority_baseline_is_a_column_beside_manual_overall_and_per_relation(tmp_path):
    published = tmp_path / "published.csv"
    published.write_text("table,variant,model,column,value,source,checked,note\n")
    _record(tmp_path, "mini-bert", "lama", 0.5, 0.5)
    _record(tmp_path, "mini-bert", "lama", 0.25, 0.3, method="majority")
    write_lama_tables(tmp_path / "runs", tmp_path / "tables", published)
    markdown = (tmp_path / "tables" / "lama34k.md").read_text()
    assert "| model | majority | lama |" in markdown and "| mini-bert | 25.0 | 50.0 |" in markdown
    per_rel = pd.read_csv(tmp_path / "tables" / "lama34k_per_relation.csv").set_index("relation")
    assert {"mini-bert / majority", "mini-bert / lama"} <= set(per_rel.columns)


def test_ptuning_cells_with_a_shortened_schedule_are_flagged():
    from bench.aggregate.lama_tables import protocol_flags

    def record(lr, epochs, patience):
        trainer = {"lr": lr, "max_epochs": epochs, "early_stopping_patience": patience}
        return {"config": {"method": {"name": "ptuning"}, "trainer": trainer, "task": {}, "model": {}}}

    assert protocol_flags(record(1e-5, 100, 20)) == []
    (flag,) = protocol_flags(record(1e-3, 5, 2))
    assert flag.startswith("P-Tuning schedule lr 0.001, at most 5 epochs, patience 2")
