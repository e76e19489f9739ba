"""PT-Fewshot's training losses with fixed weights (THUDM/P-tuning @f4225d4 run in its own environment, goldens
``ptlosses_<model>``): every task x template of the P-Tuning presets on the tiny ALBERT, BERT and RoBERTa, its
first 8 training examples, eval mode, the same LSTM prompt encoder weights on both sides. The suite's loss, its
losses per micro-batch of 2, its label logits and the input rows at the pseudo-token positions agree to 1e-5
relative (docs/parity.md, FewGLUE)."""

import pytest
import torch

from bench.parity import fewglue_ptlosses as fp
from bench.parity.fewglue_losses import scaled_diff
from bench.parity.golden import REL_TOL, load_golden, max_rel_diff
from bench.paths import data_dir

GRID = [(m, c) for m in fp.MODELS for c in fp.cases()]


@pytest.fixture(scope="module")
def golds():
    return {m: load_golden("fewglue", fp.golden_name(m)) for m in fp.MODELS}


def _needs_data(task: str) -> None:
    if not (data_dir() / "fewglue" / task / "train.jsonl").is_file():
        pytest.skip(f"FewGLUE {task} is not prepared (make data)")


@pytest.mark.parametrize(("model", "case"), GRID, ids=[f"{m}-{c.name}" for m, c in GRID])
def test_loss_and_logits_match_pt_fewshots(model, case, golds):
    _needs_data(case.task)
    theirs = golds[model]["cases"][case.name]
    assert "error" not in theirs, theirs.get("error")
    ours = fp.suite_case(model, case)
    assert ours["uids"] == [g.replace("train-p", "train-") for g in theirs["guids"]]  # its examples, its order
    assert max_rel_diff(ours["loss"], theirs["loss"]) <= REL_TOL
    assert max_rel_diff(ours["micro_losses"], theirs["micro_losses"]) <= REL_TOL
    assert ("logits" in theirs) == (case.task not in ("COPA", "WSC"))  # COPA / WSC: task helpers, no verbalizer
    if "logits" in theirs:
        assert scaled_diff(ours["logits"], theirs["logits"]) <= REL_TOL
    # where the encoder's vectors go: PT-Fewshot's block_flag positions, its rows there
    assert ours["prompt_positions"] == theirs["prompt_positions"] and len(theirs["prompt_positions"]) == case.pattern
    assert scaled_diff(ours["prompt_rows"], theirs["prompt_rows"]) <= REL_TOL


def test_the_grid_is_every_template_and_the_encoder_is_sized_as_pt_fewshot_sizes_it(golds):
    from bench.parity.fewglue import patterns

    assert {c.name for c in fp.cases()} == set(golds["tiny-albert"]["cases"])
    assert [c.pattern for c in fp.cases() if c.task == "WiC"] == patterns("WiC", "ptfewshot") == [1, 2, 3, 4]
    for model in fp.MODELS:  # --embed_size: ALBERT's factorised embedding (32), BERT / RoBERTa's hidden size (64)
        assert golds[model]["embed_size"] == fp.embed_size(model) == {"tiny-albert": 32}.get(model, 64)


def test_the_check_can_fail():
    # one entry of the prompt encoder's last bias moved by 0.1 moves the logits and the prompt rows past the
    # tolerance. The loss barely moves (3e-7): a random tiny model's loss is ~flat in one input vector, which is why
    # the rows are compared directly
    _needs_data("RTE")
    case = next(c for c in fp.cases() if c.task == "RTE")
    theirs = load_golden("fewglue", fp.golden_name("tiny-albert"))["cases"][case.name]
    runner = fp.suite_runner("tiny-albert", case.task, case.pattern)
    bias = runner.method.encoder.mlp[-1].bias
    try:
        with torch.no_grad():
            bias[0] += 0.1
        ours = fp.suite_case("tiny-albert", case)
        assert scaled_diff(ours["logits"], theirs["logits"]) > REL_TOL
        assert scaled_diff(ours["prompt_rows"], theirs["prompt_rows"]) > 1e-2
    finally:
        with torch.no_grad():
            bias[0] -= 0.1
    ours = fp.suite_case("tiny-albert", case)
    assert scaled_diff(ours["prompt_rows"], theirs["prompt_rows"]) <= REL_TOL
    assert scaled_diff(ours["logits"], theirs["logits"]) <= REL_TOL
