"""Template-sensitivity tables from records: Table 1 (P17) with the published numbers, and the widened study."""

import math
from pathlib import Path

import pandas as pd
import pytest

from bench.aggregate.lama_tables import load_published, write_lama_tables
from bench.aggregate.sensitivity import norm_prompt, prompt_frame, spread_frame, summary_frame
from bench.records import RunSpec, record_path, write_record

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "paper" / "published.csv"
P17_PROMPTS = ["[X] is located in [Y] .", "[X] is located in which country or state? [Y] .",
               "[X] is located in which country? [Y] .", "[X] is located in which country? In [Y] ."]


def lama_record(runs: Path, model: str, method: str, template: str, p_at_1: dict[str, float],
                texts: dict[str, str] | None = None, variant: str = "lama34k") -> None:
    """A finished LAMA record with the given per-relation test P@1 (and prompt texts)."""
    spec = RunSpec("lama", model, method, template, 34, variant=variant)
    groups = {rel: {"n": 10, "hits": round(10 * p), "p_at_1": p, "n_reconstructed": 0} for rel, p in p_at_1.items()}
    macro = sum(p_at_1.values()) / len(p_at_1)
    metrics = {"test": {"overall": {"macro_over_relations": macro, "pooled": macro, "n_facts": 10 * len(p_at_1),
                                    "n_relations": len(p_at_1)}, "groups": groups, "subsets": {}}}
    write_record(record_path(runs, spec), spec, {"metrics": metrics, "selection_split": "dev", "report_split": "test",
                                                 "extra": {"templates": texts or {}}})


def test_p17_table_has_the_four_published_numbers_beside_ours(tmp_path):
    runs = tmp_path / "runs"
    ours = [0.30, 0.20, 0.35, 0.50]
    for rank, (text, value) in enumerate(zip(P17_PROMPTS, ours, strict=True)):
        template = "p17_sensitivity" + (f"-r{rank}" if rank else "")
        lama_record(runs, "bert-base-cased", "manual", template, {"P17": value}, {"P17": text})
    lama_record(runs, "bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.6, "P19": 0.4})
    written = write_lama_tables(runs, tmp_path / "tables", PUBLISHED)
    assert {p.name for p in written} >= {"sensitivity_p17.md", "sensitivity_p17.tex", "sensitivity_p17.csv"}
    markdown = (tmp_path / "tables" / "sensitivity_p17.md").read_text()
    assert "| [X] is located in [Y] . | 31.29 | 30.00 | -1.29 |" in markdown
    assert "| [X] is located in which country or state? [Y] . | 19.78 | 20.00 | +0.22 |" in markdown
    assert "| [X] is located in which country? [Y] . | 31.40 | 35.00 | +3.60 |" in markdown
    assert "| [X] is located in which country? In [Y] . | 51.08 | 50.00 | -1.08 |" in markdown
    assert "| P-Tuning | — | 60.00 | — |" in markdown
    tidy = pd.read_csv(tmp_path / "tables" / "sensitivity_p17.csv")
    assert set(tidy["paper_source"].dropna()) == {"Liu et al. 2021, Table 1"}
    assert set(tidy["paper_checked"].dropna()) == {"yes"}


def test_p17_table_names_missing_cells_and_gives_no_delta_for_another_model(tmp_path):
    runs = tmp_path / "runs"
    lama_record(runs, "tiny-bert", "manual", "lama", {"P17": 0.25, "P19": 0.5}, {"P17": P17_PROMPTS[0], "P19": "x"})
    write_lama_tables(runs, tmp_path / "tables", PUBLISHED)
    markdown = (tmp_path / "tables" / "sensitivity_p17.md").read_text()
    # the manual LAMA run fills the first row (same prompt text); no Δ column for a model the paper did not use
    assert "| [X] is located in [Y] . | 31.29 | 25.00 |" in markdown and "Δ" not in markdown.split("\n")[2]
    assert "missing: tiny-bert x '[X] is located in which country? In [Y] .'" in markdown


def test_prompt_text_matching_ignores_spacing_before_punctuation():
    assert norm_prompt("[X]  is located in [Y] .") == norm_prompt("[X] is located in [Y].") == "[X] is located in [Y]."


def test_widened_study_spread_and_summary_are_hand_computable(tmp_path):
    runs = tmp_path / "runs"
    pararel = {0: {"P17": 0.10, "P19": 0.40}, 1: {"P17": 0.30, "P19": 0.20}, 2: {"P17": 0.50}}
    for rank, values in pararel.items():
        lama_record(runs, "tiny-bert", "manual", "pararel" + (f"-r{rank}" if rank else ""), values)
    lama_record(runs, "tiny-bert", "manual", "lama", {"P17": 0.2, "P19": 0.3})
    lama_record(runs, "tiny-bert", "ptuning", "ptuning_lama", {"P17": 0.7, "P19": 0.6})
    stats = spread_frame(prompt_frame(runs)).set_index("relation")
    assert stats.loc["P17", "n_prompts"] == 3 and stats.loc["P19", "n_prompts"] == 2
    assert stats.loc["P17", "min"] == pytest.approx(10) and stats.loc["P17", "max"] == pytest.approx(50)
    assert stats.loc["P17", "sd"] == pytest.approx(20.0)  # sample sd of 10, 30, 50
    assert stats.loc["P19", "sd"] == pytest.approx(math.sqrt(200))
    assert stats.loc["P17", "manual"] == pytest.approx(20) and stats.loc["P19", "ptuning"] == pytest.approx(60)
    summary = summary_frame(stats.reset_index()).iloc[0]
    assert summary["worst"] == pytest.approx((10 + 20) / 2) and summary["best"] == pytest.approx((50 + 40) / 2)
    assert summary["first"] == pytest.approx((10 + 40) / 2) and summary["ptuning"] == pytest.approx(65)
    written = write_lama_tables(runs, tmp_path / "tables", PUBLISHED)
    names = {p.name for p in written}
    assert {"sensitivity_pararel.md", "sensitivity_summary.csv"} <= names
    # paraphrase ranks stay out of the LAMA-34k table (its columns are the paper's)
    assert "pararel" not in (tmp_path / "tables" / "lama34k.md").read_text()
    rows = (tmp_path / "tables" / "sensitivity_pararel.md").read_text()
    assert "| P17 | 10.0–50.0 | 20.0 (3) | 20.0 | 70.0 |" in rows


def test_published_numbers_are_data_with_a_source_and_a_check_flag():
    published = load_published(PUBLISHED)
    assert published["source"].notna().all() and published["checked"].isin(["yes", "no"]).all()
    p17 = published[published["table"] == "sensitivity"]
    assert sorted(p17["value"]) == [19.78, 31.29, 31.40, 51.08]
    assert (p17["checked"] == "yes").all()
    lama29k = published[(published["table"] == "lama") & (published["variant"] == "lama29k")]
    assert {"lama", "lm_finetune", "lm_finetune+lama", "ptuning"} <= set(lama29k["column"])


def test_lama29k_table_shows_ours_paper_difference_and_the_gain_of_pt(tmp_path):
    runs = tmp_path / "runs"
    for method, template, value in (("manual", "lama", 0.30), ("lm_finetune", "bare", 0.50),
                                    ("lm_finetune", "lama", 0.55), ("ptuning", "ptuning_lama", 0.52)):
        lama_record(runs, "bert-base-cased", method, template, {"P17": value}, variant="lama29k")
    write_lama_tables(runs, tmp_path / "tables", PUBLISHED)
    markdown = (tmp_path / "tables" / "lama29k.md").read_text()
    # MP 30.0 vs 31.7; FT 50.0 vs 51.6; MP+FT 55.0 vs 52.1; PT 52.0 vs 52.3; gain 22.0 vs 20.6 (unchecked: *)
    assert ("| bert-base-cased | 30.0 / 31.7* (-1.7) | — / 45.2* (—) | 50.0 / 51.6* (-1.6) | 55.0 / 52.1* (+2.9) "
            "| 52.0 / 52.3* (-0.3) | 22.0 / 20.6* (+1.4) |") in markdown
    assert "missing: roberta-large x PT (no finished record)" in markdown


def test_cells_that_depart_from_the_protocol_carry_a_note(tmp_path):
    runs = tmp_path / "runs"
    spec = RunSpec("lama", "tiny-gpt2", "ptuning", "ptuning_lama", 34, variant="lama34k")
    groups = {"P17": {"n": 4, "hits": 1, "p_at_1": 0.25}}
    write_record(record_path(runs, spec), spec, {
        "metrics": {"test": {"overall": {"macro_over_relations": 0.25, "pooled": 0.25, "n_relations": 1},
                             "groups": groups}},
        "selection_split": "dev", "report_split": "test",
        "config": {"task": {"relations": "all", "limit_per_relation": 4}, "model": {"arch": "gpt2"},
                   "template": {"kind": "ptuning", "order": "code"}},
        "extra": {"vocabulary": {"key": "gpt2-xl", "n_listed": 18154}, "relations_skipped": {"P47": "no train facts"}}})
    write_lama_tables(runs, tmp_path / "tables", PUBLISHED)
    markdown = (tmp_path / "tables" / "lama34k.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| tiny-gpt2 |"))
    assert "| 25.0† |" in row
    for note in ("at most 4 test facts per relation", "1 of 41 relations scored (P47: no train facts)",
                 "lama34k facts with the 18,154-word list gpt2-xl", "[MASK] before the subject"):
        assert note in markdown
