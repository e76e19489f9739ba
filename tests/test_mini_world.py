"""The reduced mini model learns: probing and P-Tuning give real, checkable effects offline.

`mini-bert-reduced` (conf/model, conf/pretrain) is pretrained by the suite on the evidence sentences
of two relations (P176 manufacturer, P138 named after), built once into data/models (about three
minutes on one CPU core) and reused by later runs. Every number below comes from run records written
by the Hydra app, the same path `make reproduce-lama` takes.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hydra import compose, initialize_config_dir

from bench.lama import data as lama_data
from bench.paths import REPO_ROOT, data_dir
from bench.run import execute

MODEL = "mini-bert-reduced"
RELATIONS = ["P176", "P138"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mini_model():
    from bench.models.mini import model_config
    from bench.pretrain.publish import ensure_built

    cfg = model_config(MODEL)
    ensure_built(cfg, progress=False)
    return cfg


def _record(experiment: str, results, *extra: str) -> dict:
    overrides = [f"experiment={experiment}", f"model={MODEL}", f"task.relations=[{','.join(RELATIONS)}]",
                 f"paths.results_dir={results}", f"paths.root={REPO_ROOT}", *extra]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return json.loads(execute(cfg).read_text())


def _macro(record: dict, split: str) -> float:
    return record["metrics"][split]["overall"]["macro_over_relations"]


@pytest.fixture(scope="module")
def runs(mini_model, tmp_path_factory):
    results = tmp_path_factory.mktemp("mini_results")
    return {name: _record(f"lama34k_{name}", results) for name in ("manual", "majority")}


def test_majority_record_equals_a_plain_count_of_the_fact_files(runs):
    """The majority column: most frequent train object (among single-token LAMA words), scored by hand."""
    record = runs["majority"]
    vocab = set(lama_data.load_vocab("lama34k", "bert-base-cased"))
    for relation in RELATIONS:
        folder = data_dir() / "lama" / "facts" / "original" / relation  # LAMA-34k = AutoPrompt's `original`
        rows = {split: [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines() if line]
                for split in ("train", "test")}
        counts = Counter(r["obj_label"] for r in rows["train"] if r["obj_label"] in vocab)
        top = max(counts.values())
        guess = min(label for label, n in counts.items() if n == top)
        test = [r for r in rows["test"] if r["obj_label"] in vocab]
        expected = sum(r["obj_label"] == guess for r in test) / len(test)
        assert record["metrics"]["test"]["groups"][relation]["p_at_1"] == pytest.approx(expected)
        assert record["metrics"]["test"]["groups"][relation]["n"] == len(test)


def test_manual_prompts_beat_the_majority_object_baseline(runs):
    manual, majority = runs["manual"], runs["majority"]
    assert manual["metrics"]["test"]["overall"]["n_facts"] == majority["metrics"]["test"]["overall"]["n_facts"]
    assert _macro(manual, "test") > _macro(majority, "test") + 0.05
    assert _macro(manual, "dev") > _macro(majority, "dev")


def test_short_ptuning_raises_dev_p_at_1_over_the_manual_prompt(runs, tmp_path):
    tuned = _record("lama34k_ptuning", tmp_path, "debug=mini")
    for relation in RELATIONS:
        assert tuned["metrics"]["dev"]["groups"][relation]["n"] == runs["manual"]["metrics"]["dev"]["groups"][relation]["n"]
    assert _macro(tuned, "dev") > _macro(runs["manual"], "dev")
