"""Published SuperGLUE numbers carry their metric and stand beside ours on that metric (issue 24, item 12).

P-tuning-v2 @b1520c9 reports accuracy, and for MultiRC / ReCoRD F1 (tasks/superglue/dataset.py
``test_key``; its MultiRC F1 is sklearn's f1_score over answers = F1a); P-Tuning's CB cells are
accuracy and macro-F1. The suite's cell score averages two metrics for CB, MultiRC and ReCoRD, so a
published cell compared on that score would carry a spurious gap.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.paths import REPO_ROOT
from bench.tables import build_table, load_published, load_specs, read_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (tables_fixture)
from tables_fixture import save, sg_record  # noqa: E402

PAPER = REPO_ROOT / "results" / "paper" / "superglue.csv"
PTV2_METRIC = {"cb": "accuracy", "multirc": "f1a", "record": "f1"}  # the rest: accuracy


def test_every_published_superglue_cell_states_the_metric_its_source_reports():
    paper = load_published(PAPER)
    assert paper["metric"].notna().all()
    for _, row in paper.iterrows():
        if row["table"] == "superglue_ptuning_v2":
            assert row["metric"] == PTV2_METRIC.get(row["column"], "accuracy"), row.to_dict()
        else:
            assert row["metric"] == {"cb_acc": "accuracy", "cb_f1": "f1_macro"}[row["column"]], row.to_dict()


def _record(task: str, overall: dict[str, float]) -> dict:
    """A finished SuperGLUE record of the frozen table's fine-tuning row, bert-large, on val."""
    rec = sg_record(task, "bert-large-cased", "finetune", f"pet_{task}", overall, preset=f"sgv2_finetune_{task}")
    rec["spec"]["variant"] = "superglue"
    rec["name"] = rec["name"].replace("-fewglue", "-superglue")
    rec["metrics"]["heldout"] = rec["metrics"].pop("dev32")
    rec["selection_split"] = rec["protocol"]["selection_split"] = "heldout"
    return rec


@pytest.fixture(scope="module")
def frozen_finetune(tmp_path_factory):
    runs = tmp_path_factory.mktemp("sg") / "runs"
    save(runs, _record("cb", {"accuracy": 0.9, "f1_macro": 0.5}))  # score 0.7
    save(runs, _record("multirc", {"f1a": 0.6, "em": 0.2}))  # score 0.4
    spec = next(s for s in load_specs() if s["name"] == "superglue_frozen_finetune")
    return spec, read_frames(runs), load_published(PAPER)


def test_the_cell_beside_a_published_number_is_ours_on_its_metric(frozen_finetune):
    spec, frames, paper = frozen_finetune
    display = build_table(copy.deepcopy(spec), frames, paper).display.set_index("Model")
    row = display.loc["bert-large-cased"]
    assert row["CB"].startswith("90.0") and row["CB"].endswith("/ 94.6 (-4.6)")  # accuracy 90 vs 94.6, not score 70
    assert row["MultiRC"].startswith("60.0") and row["MultiRC"].endswith("/ 70.5* (-10.5)")  # F1a 60 vs 70.5


def test_a_published_cell_on_another_metric_fails_the_build(frozen_finetune):
    spec, frames, paper = frozen_finetune
    wrong = copy.deepcopy(spec)
    for column in wrong["columns"]:
        if column["key"] == "cb":
            column.pop("metric")  # back to the two-metric score
    with pytest.raises(ConfigError, match="cb .* is accuracy, the cell would show score"):
        build_table(wrong, frames, paper)
    relabelled = paper.assign(metric=lambda f: f["metric"].where(f["column"] != "multirc", "em"))
    with pytest.raises(ConfigError, match="is em, the cell would show f1a"):
        build_table(copy.deepcopy(spec), frames, relabelled)
