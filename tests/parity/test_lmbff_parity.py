"""LM-BFF parity: the suite's inputs, candidate lists, loss and logits against LM-BFF's own code's.

The golden files (``tests/golden/parity/lmbff/``) were written by princeton-nlp/LM-BFF @c282f52
run in its own environment (``python -m bench.parity lmbff --ref ...``, docs/parity.md) on the
same rows of ``data/lm-bff`` and the tiny RoBERTa; here the suite recomputes its side through the
runner's ``KShotTask`` and must agree: ids exactly, loss and logits to 1e-5 relative.
"""

from __future__ import annotations

import pytest

from bench.parity.golden import REL_TOL
from bench.parity.lmbff import TEMPLATES, TEST_SPLITS, compare, golden

TASKS = ("SST-2", "SNLI")


@pytest.fixture(scope="module", params=TASKS)
def result(request):
    return request.param, compare(request.param)


def _assert_identical(task: str, case: str, splits: dict) -> None:
    for split, comparison in splits.items():
        assert comparison.ok, f"{task} {case} {split}: {comparison.identical}/{comparison.n} identical; " \
                              f"first difference {comparison.first_difference}"


def test_every_table1_case_and_the_finetuning_input_match_lmbff(result):
    task, res = result
    cases = [f"prompt/{rank}" for rank in TEMPLATES[task]] + ["finetune"]
    for case in cases:
        splits = set(res[case]) - {"label words"}
        assert splits == {"train", "dev", *TEST_SPLITS[task]}, case  # every split was compared
        assert all(res[case][s].n >= 50 for s in splits), case  # >= 50 examples per split
        _assert_identical(task, case, res[case])


def test_demonstration_and_in_context_inputs_match_lmbff(result):
    task, res = result
    for case in ("demo", "icl"):
        _assert_identical(task, case, res[case])
    assert set(res["demo"]) == {"train", "dev", *TEST_SPLITS[task]}
    assert set(res["icl"]) == {"dev", *TEST_SPLITS[task]}  # ICL never trains


def test_filtered_candidate_lists_match_lmbff(result):
    task, res = result
    _assert_identical(task, "filter", res["filter"])


def test_prompt_loss_and_label_word_logits_match_lmbff(result):
    """Fixed weights, a fixed batch of dev inputs with demonstrations: loss and label-word logits as LM-BFF's."""
    task, res = result
    model = res["model"]
    assert model["n"] == 8
    assert model["loss"] <= REL_TOL and model["logits"] <= REL_TOL, model


def test_one_step_reaches_the_weights_lmbffs_untied_head_does(result):
    """After one SGD step the untied head (LM-BFF's, the presets' default) agrees; the suite's tied head would
    also move the label words' input embeddings (they occur in the demonstrations) and does not."""
    task, res = result
    model = res["model"]
    assert model["loss_after_step"] <= REL_TOL and model["logits_after_step"] <= REL_TOL, model
    assert model["logits_after_step_tied"] > 100 * REL_TOL, model


def test_goldens_cover_the_longest_test_rows_and_the_cut_inputs():
    """The test selection holds the longest rows; demonstration / ICL goldens include inputs cut to length."""
    for task, budget in (("SST-2", 128), ("SNLI", 256)):
        gold = golden(task)
        jobs = gold["jobs"]
        assert any(f["length"] == budget and f["input_ids"][-1] != 2 for f in jobs["demo"]["inputs"].values()) \
            or task == "SNLI"  # SST-2's tail cut; SNLI's 256 tokens fit one demonstration per label
        assert any(len(f["input_ids"]) == 512 for f in jobs["icl"]["inputs"].values())  # head cut at 512
        assert gold["meta"]["environment"]["transformers"] == "3.4.0"


def test_reference_lm_head_is_untied_from_the_embeddings():
    """LM-BFF's RobertaForPromptFinetuning does not tie its LM head (docs/lmbff.md lists the difference)."""
    for task in TASKS:
        assert golden(task)["jobs"]["model"]["lm_head_tied_to_embeddings"] is False
