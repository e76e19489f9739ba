"""SuperGLUE classifier-head inputs equal THUDM/P-tuning-v2's own (@b1520c9), from committed golden files.

The goldens (tests/golden/parity/superglue/inputs_<task>_<backbone>.json) are what the reference's
``SuperGlueDataset`` produced on the suite's prepared rows with the tiny tokenizers
(``python -m bench.parity superglue --ref ...``, docs/parity.md); the reference is not needed here.
"""

from __future__ import annotations

import pytest

from bench.parity import superglue as P

CASES = [(fam, task, model) for fam in P.FAMILIES for task in fam.tasks for model in P.BACKBONES]


@pytest.fixture(scope="module")
def tasks(tiny_backbone):
    cache = {}

    def get(fam, task, model):
        key = (fam.name, task, model)
        if key not in cache:
            cache[key] = P.suite_task(fam.preset_for(task, P.BACKBONES[model]), model, tiny_backbone(model))
        return cache[key]

    return get


@pytest.mark.parametrize(("fam", "task", "model"), CASES, ids=[f"{f.name}-{t}-{m}" for f, t, m in CASES])
def test_inputs_equal_the_reference(tasks, fam, task, model):
    theirs = P.golden_inputs(task, model, fam.template_id(task, P.BACKBONES[model]))
    result = P.compare(P.suite_inputs(tasks(fam, task, model), task, list(theirs)), theirs)
    assert result.ok, f"{result.identical} of {result.n}; first: {result.first_difference}"


@pytest.mark.parametrize("model", list(P.BACKBONES))
@pytest.mark.parametrize("task", P.TASKS)
def test_goldens_cover_fifty_per_split_and_truncated_examples(task, model):
    golden = P.golden_inputs(task, model, 0)
    splits = {split: [k for k in golden if k.startswith(f"{split}-")] for split in ("train", "val")}
    assert len(splits["val"]) >= P.N_FIRST
    if (P.data_dir() / "superglue" / P.FOLDER[task] / "train.jsonl").is_file():
        assert len(splits["train"]) >= P.N_FIRST
    assert all(e["padded_to"] == P.MAX_LENGTH for e in golden.values())
    if task in ("boolq", "multirc"):  # passages longer than 128 tokens: the longest examples are cut at 128
        assert max(len(e["input_ids"]) for e in golden.values()) == P.MAX_LENGTH
    has_types = any("token_type_ids" in e for e in golden.values())
    assert has_types == (model == "tiny-bert")  # RoBERTa's tokenizer returns no segment ids


def test_bert_segments_reach_the_batch(tasks):
    """The collated batch carries each sequence's token types (padding is segment 0), as the reference passes them."""
    fam = P.FAMILIES[0]
    task_obj = tasks(fam, "rte", "tiny-bert")
    golden = P.golden_inputs("rte", "tiny-bert", 0)
    keys = [k for k in golden if k.startswith("val-")][:4]
    items = [task_obj._item(ex, train=False) for ex in task_obj.examples("val") if ex.uid in keys]
    batch = task_obj.collate(items)
    for row, item in enumerate(items):
        ref = golden[item.example.uid]
        n = len(ref["input_ids"])
        assert batch.input_ids[row, :n].tolist() == ref["input_ids"]
        assert batch.token_type_ids[row, :n].tolist() == ref["token_type_ids"]
        assert batch.attention_mask[row].tolist() == [1] * n + [0] * (batch.input_ids.shape[1] - n)
        assert set(batch.token_type_ids[row, n:].tolist()) <= {0}
    assert 1 in batch.token_type_ids.tolist()[0]  # the second segment is segment 1


@pytest.mark.parametrize(("model", "passed"), [("tiny-bert", True), ("tiny-albert", False)])
def test_pet_form_passes_segments_only_where_pet_does(tiny_backbone, model, passed):
    """PET's classifier (wrapper.generate_default_inputs) passes token types to bert and xlnet only."""
    task_obj = P.suite_task("sg_clsft_rte", model, tiny_backbone(model))  # classifier_inputs: pet
    items = [task_obj._item(ex, train=False) for ex in task_obj.examples("val")[:2]]
    assert all(bool(it.types) is passed for it in items)
    assert (task_obj.collate(items).token_type_ids is not None) is passed
