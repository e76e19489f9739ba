"""AutoPrompt parity: one trigger-search iteration of ucinlp/autoprompt's own code (golden file written by
``python -m bench.parity autoprompt --ref ...`` in the reference environment, docs/parity.md) against
``bench.search`` on tiny-bert and 12 LAMA P17 train facts: ids exactly, losses and scores to 1e-5 relative."""

import pytest

from bench.parity.autoprompt import golden, suite_side
from bench.parity.golden import REL_TOL


@pytest.fixture(scope="module")
def sides():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny forward passes: one thread avoids the sync cost of several on a busy machine
    ref = golden()
    try:
        yield ref, suite_side(ref)
    finally:
        torch.set_num_threads(before)


def test_the_query_ids_trigger_slots_mask_and_gold_ids_are_autoprompts(sides):
    ref, ours = sides
    assert ours["labels"] == ref["labels"]
    assert ours["trigger_positions"] == ref["trigger_positions"]
    assert ours["predict_positions"] == ref["predict_positions"]
    for theirs, mine in zip(ref["cases"], ours["cases"], strict=True):
        assert mine["trigger_ids"] == theirs["trigger_ids"]
        assert mine["input_ids"] == theirs["input_ids"]


@pytest.mark.parametrize("case", [0, 1], ids=["all-mask trigger", "word trigger"])
def test_losses_hotflip_candidates_and_their_scores_are_autoprompts(sides, case):
    ref, ours = sides
    theirs, mine = ref["cases"][case], ours["cases"][case]
    assert mine["losses"] == pytest.approx(theirs["losses"], rel=REL_TOL)
    for pos, (a, b) in enumerate(zip(theirs["positions"], mine["positions"], strict=True)):
        assert b["candidates"] == a["candidates"], f"position {pos}"
        assert b["scores"] == pytest.approx(a["scores"], rel=REL_TOL), f"position {pos}"
