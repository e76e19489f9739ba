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
