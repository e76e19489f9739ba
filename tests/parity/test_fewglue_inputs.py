"""PET's own preprocessing (timoschick/pet @21d32de, run by ``python -m bench.parity fewglue``) against the
suite's inputs for the same FewGLUE rows: input ids, the token_type_ids the model is given, attention
length, mask positions, labels and each choice's target ids must be identical (docs/parity.md, FewGLUE)."""

import pytest

from bench.parity import fewglue as fg
from bench.paths import data_dir

# model x task (x pattern) pairs whose inputs still differ from PET's, with the class of difference;
# strict: a case that starts to match fails here until it is taken off this list
OPEN = {
    ("tiny-albert", "BoolQ"): "slow SentencePiece splits a digit before a comma",
    ("tiny-albert", "CB", 0): "segment ids", ("tiny-albert", "CB", 1): "segment ids",
    ("tiny-albert", "CB", 2): "segment ids", ("tiny-albert", "CB", 3): "segment ids",
    ("tiny-albert", "RTE", 0): "segment ids", ("tiny-albert", "RTE", 1): "segment ids",
    ("tiny-albert", "RTE", 2): "segment ids", ("tiny-albert", "RTE", 3): "segment ids",
    ("tiny-albert", "RTE", 4): "slow SentencePiece", ("tiny-albert", "WiC"): "slow SentencePiece",
    ("tiny-albert", "COPA"): "', so' part", ("tiny-albert", "MultiRC"): "slow SentencePiece",
    ("tiny-albert", "ReCoRD"): "text after the masks", ("tiny-albert", "WSC"): "pad draws, text after the masks",
    ("tiny-roberta", "BoolQ"): "prefix space", ("tiny-roberta", "CB"): "prefix space",
    ("tiny-roberta", "COPA"): "prefix space", ("tiny-roberta", "MultiRC"): "prefix space",
    ("tiny-roberta", "ReCoRD"): "prefix space", ("tiny-roberta", "RTE"): "prefix space",
    ("tiny-roberta", "WiC"): "prefix space", ("tiny-roberta", "WSC"): "prefix space",
    ("tiny-bert", "BoolQ"): "truncation", ("tiny-bert", "ReCoRD"): "text after the masks",
    ("tiny-bert", "WSC"): "pad draws",
}
# PET refuses these patterns on the tiny BERT tokenizer (a label word of several tokens); the suite refuses them too
PET_REFUSES = {("tiny-bert", "CB", 4), ("tiny-bert", "MultiRC", 3)}
CASES = [(m, t, p) for m in fg.MODELS for t in fg.PET_TASK for p in fg.patterns(t)]


def _needs_data(task: str) -> None:
    if not (data_dir() / "fewglue" / task / "train.jsonl").is_file():
        pytest.skip(f"FewGLUE {task} is not prepared (make data)")


@pytest.mark.parametrize(("model", "task", "pattern"), CASES, ids=[f"{m}-{t}-{p}" for m, t, p in CASES])
def test_inputs_identical_to_pets(model, task, pattern, request):
    _needs_data(task)
    reason = OPEN.get((model, task, pattern)) or OPEN.get((model, task))
    if reason:
        request.applymarker(pytest.mark.xfail(reason=f"open difference: {reason}", strict=True))
    for split in ("train", "val"):
        res = fg.compare(model, task, pattern, split)
        if (model, task, pattern) in PET_REFUSES:
            assert "single token" in res["error"]
            continue
        assert res["n"] >= 32, res
        assert res["n_suite"] == res["n"] and res["identical"] == res["n"], res["first_difference"]
        assert res["label_words_identical"]
