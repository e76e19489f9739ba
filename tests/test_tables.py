"""Every table spec under conf/tables renders hand-made records to numbers computed by hand here."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from tables_fixture import P17_PROMPTS, kshot_record, record, save, sg_record

from bench.superglue.data import split_file
from bench.tables import build_table, load_published, load_specs, read_frames
from bench.tables.spec import TABLES_DIR

MISSING = "missing data" if not split_file("BoolQ", "train", "superglue").is_file() else "—"
GOLDEN_PUBLISHED = Path(__file__).resolve().parent / "golden" / "published.csv"
FEWGLUE_PUBLISHED = Path(__file__).resolve().parent / "fewglue_published.csv"  # two rows shaped like results/paper
FOLLOWS = {"task": {"relations": ["P17", "P19"], "protocol": "reference"}, "model": {},  # no protocol departure
           "method": {}}


def _runs(root: Path) -> Path:
    runs = root / "runs"
    add = lambda *a, **k: save(runs, record("lama", *a, config=k.pop("config", FOLLOWS), **k))  # noqa: E731
    add("bert-base-cased", "manual", "lama", {"P17": 0.5, "P19": 0.3}, texts={"P17": P17_PROMPTS[0]})
    add("bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.6, "P19": 0.8})
    add("bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.4, "P19": 0.6}, seed=35)
    add("bert-base-cased", "manual", "pararel", {"P17": 0.1, "P19": 0.2})
    add("bert-base-cased", "manual", "pararel-r1", {"P17": 0.3, "P19": 0.6})
    add("bert-base-cased", "manual", "lpaqa_paraphrase", {"P17": 0.2})
    add("bert-base-cased", "manual", "lpaqa_paraphrase-r1", {"P17": 0.4})
    add("bert-base-cased", "manual", "p17_sensitivity-r1", {"P17": 0.25}, texts={"P17": P17_PROMPTS[1]})
    add("bert-base-cased", "manual", "lama", {"P17": 0.3}, variant="lama29k")
    add("bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.5}, variant="lama29k")
    # LM-BFF: two grid points per data split; each split keeps its best dev point (seed 13: B, seed 21: A)
    for seed, config, dev, test in ((13, "a", 0.80, 0.90), (13, "b", 0.90, 0.94), (21, "a", 0.70, 0.88),
                                    (21, "b", 0.60, 0.80)):
        save(runs, kshot_record("sst2", "roberta-large", "pet", "lmbff_sst2", test, dev, seed=seed,
                                config_hash=f"{config}{seed}"))
    save(runs, kshot_record("snli", "roberta-large", "finetune", "lmbff_snli", 0.5, 0.5))
    save(runs, kshot_record("sst2", "roberta-large", "manual", "lmbff_sst2", 0.836, 0.8))
    for args in SUPERGLUE_RUNS:
        save(runs, superglue_record(*args[:5], **(args[5] if len(args) > 5 else {})))
    albert = "albert-xxlarge-v2"
    save(runs, sg_record("cb", albert, "ptuning_finetune", "ptuning_cb", {"accuracy": 0.8, "f1_macro": 0.7}, rank=1))
    save(runs, sg_record("cb", albert, "ptuning_finetune", "ptuning_cb", {"accuracy": 0.9, "f1_macro": 0.5}, rank=1,
                         seed=43))
    save(runs, sg_record("boolq", albert, "pet", "pet_boolq", {"accuracy": 0.6}, rank=0, dev32={"accuracy": 0.9},
                         preset="fewglue_pet_boolq"))
    save(runs, sg_record("boolq", albert, "pet", "pet_boolq", {"accuracy": 0.7}, rank=1, dev32={"accuracy": 0.5},
                         preset="fewglue_pet_boolq"))
    save(runs, sg_record("boolq", albert, "pet", "pet_boolq", {"accuracy": 0.99}, rank=2, dev32={"accuracy": 0.99},
                         preset="fewglue_ipet_g1_boolq", config_hash="1ce00000"))  # iPET generation 1: not PET's
    for seed, acc in ((42, 0.62), (43, 0.68)):
        save(runs, sg_record("wic", albert, "finetune", "pet_wic", {"accuracy": acc}, seed=seed, config_hash="1ced0000",
                             preset="fewglue_ipet_distill_wic"))
    for seed, rank, val, dev in ((42, 0, 0.60, 0.50), (43, 0, 0.70, 0.75), (42, 1, 0.80, 0.75), (43, 1, 0.90, 0.50),
                                 (42, 2, 0.55, 0.50), (43, 2, 0.65, 0.75)):  # RTE dev32 means: 0.625 each
        save(runs, sg_record("rte", albert, "pet", "pet_rte", {"accuracy": val}, rank=rank, seed=seed,
                             dev32={"accuracy": dev}, preset="fewglue_pet_rte"))
    for seed, acc in ((42, 0.5), (43, 0.6), (44, 0.7)):
        save(runs, sg_record("wic", albert, "finetune", "pet_wic", {"accuracy": acc}, seed=seed,
                             preset="fewglue_pet_distill_wic"))
    save(runs, sg_record("wic", albert, "finetune", "pet_wic", {"accuracy": 0.9}, config_hash="cls00000"))  # CLS
    for seed, acc in ((42, 0.55), (43, 0.65)):  # few-shot CLS fine-tuning and Prompt Tuning rows
        save(runs, sg_record("rte", albert, "finetune", "pet_rte", {"accuracy": acc}, seed=seed,
                             preset="fewglue_clsft_rte"))
    save(runs, sg_record("rte", albert, "prompt_tuning", "pet_rte", {"accuracy": 0.52}, preset="fewglue_prompt_tuning_rte"))
    for seed, acc in ((42, 0.5), (43, 0.6)):  # Lester: default-recipe Prompt Tuning (more in test_lester_tables.py)
        save(runs, superglue_record("t5-small-lm-adapt", "prompt_tuning", "lester_prompt_tuning_rte", "rte", acc, seed=seed))
    save(runs, superglue_record("t5-small-lm-adapt", "prompt_tuning", "lester_ensemble_rte", "rte", 0.6, seed=44))  # vote
    save(runs, superglue_record("t5-v1_1-small", "model_tuning", "lester_model_tuning_rte", "rte", 0.8))  # Lester Model Tuning
    return runs


def superglue_record(model: str, method: str, preset: str, task: str, score: float, seed: int = 42,
                     valsel: bool = False, component: dict | None = None) -> dict:
    """A finished SuperGLUE record (schema 2): val score (= accuracy for RTE/WiC), held-out or val selection."""
    task_cfg = {"name": task, "limit": None, **({"allow_val_selection": True, "protocol": "val_selection"}
                                                if valsel else {})}
    method_cfg = {"name": method, **({"component": component} if component else {})}
    rec = record(task, model, method, f"pet_{task}", {"x": 0.0}, variant="superglue", seed=seed, schema=2,
                 config_hash=f"h{int(valsel)}", config={"task": task_cfg, "model": {}, "method": method_cfg,
                                                        "trainer": {"max_steps": None}})
    rec["spec"]["preset"] = preset
    rec["metrics"] = {"val": {"overall": {"score": score, "accuracy": score, "n": 277}, "groups": {}},
                      "heldout": {"overall": {"score": score, "accuracy": score, "n": 249}, "groups": {}}}
    rec["selection_split"], rec["report_split"] = ("val" if valsel else "heldout"), "val"
    rec["protocol"] = {"selection_split": rec["selection_split"], "report_split": "val", "seeds": [seed],
                       "selection_rule": "best epoch"}
    return rec


SUPERGLUE_RUNS = [  # (model, method, preset, task, val score[, options])
    ("bert-base-cased", "finetune", "sg_clsft_rte", "rte", 0.60), ("bert-base-cased", "finetune", "sg_clsft_rte", "rte",
                                                                   0.70, {"seed": 43}),
    ("bert-base-cased", "pet", "sg_petft_rte", "rte", 0.50), ("gpt2", "ptuning_finetune", "sg_ptuning_wic", "wic", 0.55),
    ("bert-large-cased", "finetune", "sgv2_finetune_rte", "rte", 0.75),
    ("bert-large-cased", "finetune", "sgv2_finetune_copa", "copa", 0.60, {"component": {"freeze_backbone": True}}),
    ("bert-large-cased", "prompt_classifier", "sgv2_prompt_tuning_rte", "rte", 0.52),
    ("bert-large-cased", "ptuning", "sgv2_ptuning_rte", "rte", 0.58),
    ("bert-large-cased", "ptuning_v2", "sgv2_ptuning_v2_rte_bert", "rte", 0.80),
    ("bert-large-cased", "ptuning_v2", "sgv2_ptuning_v2_rte_bert_valsel", "rte", 0.85, {"valsel": True}),
]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    frames = read_frames(_runs(tmp_path_factory.mktemp("specs")))
    published = pd.concat([load_published(GOLDEN_PUBLISHED), load_published(GOLDEN_PUBLISHED.with_name(
        "lmbff_published.csv")), load_published(FEWGLUE_PUBLISHED)], ignore_index=True)
    return {spec["name"]: build_table(spec, frames, published) for spec in load_specs()}


def _cell(table, row: str, column: str, label: str | None = None) -> str:
    display = table.display
    first = label or display.columns[0]
    return display.set_index(first).loc[row, column]


# spec name -> (row label, display column, expected text), each number computed by hand in the comment
EXPECTED = {
    "lama34k": [("bert-base-cased", "Manual", "40.0"),  # (50 + 30) / 2
                ("bert-base-cased", "Manual (paper)", "31.1"), ("bert-base-cased", "Manual Δ", "+8.9"),
                ("bert-base-cased", "P-Tuning", "60.0"),  # seeds 34 and 35: (70 + 50) / 2
                ("bert-base-cased", "P-Tuning (paper)", "48.3*"), ("bert-base-cased", "P-Tuning Δ", "+11.7"),
                ("bert-large-cased", "Manual", "—"), ("bert-large-cased", "Manual (paper)", "32.3")],
    "lama34k_per_relation": [("P17", "bert-base-cased: Manual", "50.0"), ("P19", "bert-base-cased: Manual", "30.0"),
                             ("P17", "bert-base-cased: P-Tuning", "50.0"),  # (60 + 40) / 2
                             ("P19", "bert-base-cased: P-Tuning", "70.0")],  # (80 + 60) / 2
    "lama29k": [("bert-base-cased", "MP", "30.0 / 31.7* (-1.7)"), ("bert-base-cased", "PT", "50.0 / 52.3* (-2.3)"),
                ("bert-base-cased", "PT−MP", "20.0 / 20.6* (-0.6)"),  # 52.3 - 31.7 = 20.6
                ("roberta-base", "AutoPrompt", "— / 40.0* (—)")],
    "lama29k_per_relation": [("P17", "bert-base-cased: MP", "30.0"), ("P17", "bert-base-cased: PT", "50.0")],
    "sensitivity_p17": [(P17_PROMPTS[0], "bert-base-cased", "50.00"),
                        (P17_PROMPTS[0], "bert-base-cased Δ", "+18.71"),  # 50 - 31.29
                        (P17_PROMPTS[1], "bert-base-cased", "25.00"), (P17_PROMPTS[1], "bert-base-cased Δ", "+5.22"),
                        (P17_PROMPTS[3], "bert-base-cased", "—"), (P17_PROMPTS[3], "paper (bert-base-cased)", "51.08"),
                        ("P-Tuning", "bert-base-cased", "50.00")],  # seeds: (60 + 40) / 2
    "sensitivity_pararel": [("P17", "bert-base-cased: min–max", "10.0–30.0"),
                            ("P17", "bert-base-cased: sd (n)", "14.1 (2)"),  # sd of 10, 30 = sqrt(200)
                            ("P19", "bert-base-cased: min–max", "20.0–60.0"),
                            ("P19", "bert-base-cased: sd (n)", "28.3 (2)"),  # sd of 20, 60 = sqrt(800)
                            ("P19", "bert-base-cased: manual", "30.0"), ("P19", "bert-base-cased: PT", "70.0")],
    "sensitivity_lpaqa_paraphrase": [("P17", "bert-base-cased: min–max", "20.0–40.0"),
                                     ("P17", "bert-base-cased: manual", "50.0")],
    "sensitivity_summary": [("pararel", "Relations", "2"), ("pararel", "Worst", "15.0"),  # (10 + 20) / 2
                            ("pararel", "First", "15.0"), ("pararel", "Best", "45.0"),  # (30 + 60) / 2
                            ("pararel", "Mean range", "30.0"),  # (20 + 40) / 2
                            ("pararel", "Mean sd", "21.2"),  # (sqrt(200) + sqrt(800)) / 2 = 21.21
                            ("pararel", "Manual", "40.0"), ("pararel", "P-Tuning", "60.0"),  # (50 + 70) / 2
                            ("lpaqa_paraphrase", "Relations", "1"), ("lpaqa_paraphrase", "Manual", "50.0"),
                            ("lpaqa_paraphrase", "P-Tuning relations", "1")],
    # LM-BFF: picks 94 (seed 13) and 88 (seed 21): mean 91.0, population std sqrt((9 + 9) / 2) = 3.0; paper 92.7
    "lmbff_table1_sst2": [("roberta-large", "great/terrible", "91.0 (3.0) / 92.7 (-1.7)"),
                          ("roberta-large", "good/bad", "—")],
    "lmbff_table1_snli": [("roberta-large", "Fine-tuning", "50.0 (—)")],  # one split: no std
    "lmbff_main": [("roberta-large", "SST-2 zero-shot", "83.6 (—) / 83.6* (+0.0)"),
                   ("roberta-large", "SST-2 prompt FT (man)", "91.0 (3.0)")],
    # SuperGLUE (SUPERGLUE_RUNS): mean (sample sd) over seeds; no full BoolQ train locally -> "missing data"
    "superglue_finetune": [("bert-base-cased", "RTE", "65.0 (7.1)"),  # (60 + 70) / 2, sd sqrt(50) = 7.07
                           ("bert-base-cased", "BoolQ", MISSING), ("bert-base-cased", "WiC", "—")],
    "superglue_pet": [("bert-base-cased", "RTE", "50.0 (—)")],  # one seed: no sd
    "superglue_ptuning_finetune": [("gpt2", "WiC", "55.0 (—)"), ("gpt2", "RTE", "—")],
    "superglue_frozen_finetune": [("bert-large-cased", "RTE", "75.0 (—)"),
                                  ("bert-large-cased", "COPA", "60.0 (—)†")],  # frozen backbone (fix_bert): marked
    "superglue_frozen_prompt_classifier": [("bert-large-cased", "RTE", "52.0 (—)")],
    "superglue_frozen_ptuning": [("bert-large-cased", "RTE", "58.0 (—)")],
    "superglue_frozen_ptuning_v2": [("bert-large-cased", "RTE", "80.0 (—)"),  # held-out selection, beside ...
                                    ("bert-large-cased (protocol val_selection)", "RTE", "85.0 (—)†")],  # ... val, marked
    "fewglue_ptuning": [("albert-xxlarge-v2", "CB Acc", "85.0 (7.1)"),  # seeds 42, 43: 80, 90; sd = sqrt(50)
                        ("albert-xxlarge-v2", "CB F1", "60.0 (14.1)"),  # 70, 50; sd = sqrt(200)
                        ("albert-xxlarge-v2", "CB F1 (paper)", "92.3*"),
                        ("albert-xxlarge-v2", "CB F1 Δ", "-32.3"),  # 60.0 - 92.3
                        ("albert-xxlarge-v2", "BoolQ Acc", "—")],  # PET records never enter P-Tuning's table
    "fewglue_pet": [("albert-xxlarge-v2", "BoolQ Acc", "65.0 (7.1)"),  # patterns 0, 1: 60, 70
                    ("albert-xxlarge-v2", "BoolQ Acc (paper)", "79.4*"),
                    ("albert-xxlarge-v2", "BoolQ Acc Δ", "-14.4")],  # 65.0 - 79.4
    "fewglue_pet_best": [("albert-xxlarge-v2", "BoolQ Acc", "60.0 (—)"),  # pattern 0 (dev32 90 vs 50), not val's best 70
                         ("albert-xxlarge-v2", "RTE Acc", "65.0 (7.1)"),  # three-way dev32 tie: pattern 0 (60, 70)
                         ("albert-xxlarge-v2", "CB Acc", "—")],  # no PET records for CB
    "fewglue_fewshot_finetune": [("albert-xxlarge-v2", "RTE Acc", "60.0 (7.1)"),  # 55, 65; not the distilled WiC runs
                                 ("albert-xxlarge-v2", "WiC Acc", "—")],
    "fewglue_fewshot_prompt_tuning": [("albert-xxlarge-v2", "RTE Acc", "52.0 (—)")],
    "fewglue_ipet": [("albert-xxlarge-v2", "WiC Acc", "65.0 (4.2)")],  # 62, 68: sd sqrt(18); not PET's 50/60/70
    "fewglue_pet_distilled": [("albert-xxlarge-v2", "WiC Acc", "60.0 (10.0)")],  # 50, 60, 70 (sd 10); not the CLS 90
    "lester_prompt_tuning": [("t5-small-lm-adapt", "RTE Acc", "55.0 (7.1)")],  # 50, 60; not the ensemble's 60
    "lester_model_tuning": [("t5-v1_1-small", "RTE Acc", "80.0 (—)")],  # one seed; not the prompt-tuning runs
    "lester_ensemble": [("t5-small-lm-adapt", "RTE Acc Ens", "60.0"),  # the vote's accuracy
                        ("t5-small-lm-adapt", "RTE Acc Avg", "—")],  # this record has no per-prompt subsets
}


def test_every_spec_has_hand_computed_expectations():
    names = {spec["name"] for spec in load_specs()}
    assert names == set(EXPECTED), "add the new spec's hand-computed cells to EXPECTED"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec_renders_the_hand_computed_numbers(tables, name):
    table = tables[name]
    assert table is not None
    label = "Prompt set" if name == "sensitivity_summary" else None
    for row, column, text in EXPECTED[name]:
        assert _cell(table, row, column, label) == text, (name, row, column)


def test_seeds_are_reduced_with_mean_std_and_n_in_the_csv(tables):
    tidy = tables["lama34k"].tidy
    cell = tidy[(tidy["Model"] == "bert-base-cased") & (tidy["column"] == "ptuning")].iloc[0]
    assert cell["mean"] == pytest.approx(60.0) and cell["n"] == 2
    assert cell["std"] == pytest.approx(math.sqrt(200)) and cell["min"] == pytest.approx(50.0)
    assert cell["records"].count(";") == 1


def test_missing_cells_are_grouped_in_one_note(tables):
    notes = tables["lama34k"].notes
    (missing,) = [n for n in notes if n.startswith("— no finished record")]
    assert "bert-large-cased: Manual, LPAQA" in missing and missing.count("bert-large-cased") == 1


def test_published_rows_keep_source_and_check_flag():
    published = load_published(GOLDEN_PUBLISHED)
    assert published["source"].notna().all() and published["checked"].isin(["yes", "no"]).all()
    assert sorted(published[published["table"] == "sensitivity"]["value"]) == [19.78, 31.29, 31.40, 51.08]


def test_spec_files_are_all_loadable_and_named_after_their_file():
    for path in sorted(TABLES_DIR.glob("*.yaml")):
        names = [s["name"] for s in load_specs(TABLES_DIR, [path.stem])]
        assert names and all(n == path.stem or "{" not in n for n in names)


def test_tidy_csv_has_one_row_per_cell(tables):
    tidy = tables["sensitivity_pararel"].tidy
    assert len(tidy[(tidy["Relation"] == "P17") & (tidy["group"] == "bert-base-cased")]) == 4
    assert pd.api.types.is_numeric_dtype(tidy["value"])


def test_the_worked_example_of_the_docs_renders(tmp_path):
    from bench.tables import load_spec
    from bench.tables.render import to_markdown

    examples = Path(__file__).resolve().parents[1] / "docs" / "examples"
    runs = tmp_path / "runs"
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5, "P19": 0.3}, config=FOLLOWS))
    save(runs, record("lama", "bert-base-cased", "manual", "lpaqa", {"P17": 0.9}, config=FOLLOWS))  # not selected
    (spec,) = load_spec(examples / "lama_paper_trex.yaml")
    table = build_table(spec, read_frames(runs), load_published(examples / "lama_paper.csv"))
    markdown = to_markdown(table)
    assert "| bert-base-cased | 40.0 | 31.1* | +8.9 |" in markdown  # (50 + 30) / 2 - 31.1
    assert "| bert-large-cased | — | 32.3* | — |" in markdown
    assert "Model | Manual prompt | Manual prompt (paper) | Manual prompt Δ" in markdown


def test_pet_best_names_the_kept_pattern_in_the_csv(tables):
    tidy = tables["fewglue_pet_best"].tidy
    boolq = tidy[(tidy["column"] == "boolq") & tidy["selected"]].iloc[0]
    assert boolq["best"] == "rank=0 (dev32 0.9000)" and boolq["n"] == 1
    rte = tidy[(tidy["column"] == "rte") & tidy["selected"]].iloc[0]
    assert rte["best"] == "rank=0 (dev32 0.6250)" and rte["mean"] == pytest.approx(65.0)
