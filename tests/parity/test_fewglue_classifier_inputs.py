"""PET's distilled classifier's inputs by execution: timoschick/pet @21d32de ``SequenceClassifierPreprocessor`` (and
its task helpers) with transformers 3.0.2's slow tokenizers, golden ``classifier_<model>_<task>`` (regenerate:
``python -m bench.parity fewglue --ref /path/to/pet --parts classifier``). The suite's classifier inputs
(``bench.superglue.classifier_items``, with ``fewglue_pet_distill_<task>``'s task config: ``tokenization: pet_slow``,
COPA ``pet_pair``, WiC ``sentences``) must give the same input ids, token_type_ids passed, attention length and label
on every example; hand-made cases check the slow encoding and ``longest_first`` truncation by hand."""

import pytest

from bench.parity import fewglue_classifier as fc
from bench.paths import data_dir
from bench.superglue import data as sg
from bench.superglue.classifier_items import classifier_item, pet_slow_pair, slow_text_ids

MODELS = ("tiny-albert", "tiny-bert", "tiny-roberta")


def _needs_data() -> None:
    if not (data_dir() / "fewglue" / "COPA" / "unlabeled.jsonl").is_file():
        pytest.skip("FewGLUE is not prepared (make data)")


@pytest.mark.parametrize("task", fc.TASKS)
@pytest.mark.parametrize("model", MODELS)
def test_classifier_inputs_equal_pets(model, task):
    _needs_data()
    golden = fc.load_golden("fewglue", fc.golden_name(model, task))
    for split, theirs in golden["splits"].items():
        result = fc.compare(model, task, split)
        assert result["n_suite"] == result["n"] == len(theirs), (split, result)
        assert result["identical"] == result["n"], (split, result["first_difference"])
    assert len(golden["splits"]["train"]) >= 32 and len(golden["splits"]["val"]) >= 50
    if task in fc.DISTILLED:
        assert len(golden["splits"]["unlabeled"]) >= 50


@pytest.mark.parametrize(("model", "task", "split", "fast_identical"), [
    ("tiny-albert", "BoolQ", "train", 23),  # slow SentencePiece: "▁20," -> "▁20 ,"
    ("tiny-albert", "MultiRC", "unlabeled", 392),
    ("tiny-bert", "BoolQ", "train", 31),  # slow BERT keeps U+202C inside its word: [UNK]
    ("tiny-bert", "MultiRC", "unlabeled", 425),
])
def test_fast_tokenizer_differs_where_the_flag_matters(model, task, split, fast_identical):
    # the golden cases catch the fast tokenizer: task.tokenization=fast (the suite before) differs on these
    _needs_data()
    result = fc.compare(model, task, split, ("task.tokenization=fast",))
    assert result["identical"] == fast_identical < result["n"]


def test_wic_word_prefix_differs_from_what_pet_runs():
    # PET's WicTaskHelper prefixes "word: " but TASK_HELPERS @21d32de does not register it: PET encodes (s1, s2)
    _needs_data()
    result = fc.compare("tiny-bert", "WiC", "val", ("task.wic_classifier_inputs=word",))
    assert result["identical"] == 0


def test_preset_task_reads_the_same_inputs():
    # through the ClassificationTask the preset builds (fewglue_pet_distill_copa on tiny ALBERT), not only the config
    _needs_data()
    from bench.parity import fewglue_losses as fl

    case = next(c for c in fl.CASES if c.classifier)
    task = fl.suite_classifier_task(case)
    theirs = fc.load_golden("fewglue", fc.golden_name(fl.MODEL, "COPA"))["splits"]["val"]
    rows = fc._rows(fc.load_golden("fewglue", fc.golden_name(fl.MODEL, "COPA"))["selection"]["val"], data_dir())
    uids = [ex.uid for ex in sg.parse_rows("COPA", rows, "val")]
    items = {it.example.uid: it for it in task.items("val")}
    assert len(uids) == len(theirs)
    assert [items[uid].sequences for uid in uids] == [[ex["input_ids"]] for ex in theirs]
    assert all(items[uid].types == [] for uid in uids)  # PET passes no token_type_ids to ALBERT


def test_copa_unlabeled_view_is_mirrored_as_pets():
    """PET's CopaProcessor mirrors the unlabeled set as the train set (tasks.py, set_type 'unlabeled': the golden's
    106 for 53 rows): with the presets' task.mirror_copa_unlabeled the classifier trains on both choice orders."""
    _needs_data()
    from bench.parity import fewglue_losses as fl

    case = next(c for c in fl.CASES if c.classifier)
    task = fl.suite_classifier_task(case)
    rows = sg.load_split("COPA", "unlabeled")
    items = task.items("unlabeled")
    assert len(items) == 2 * len(rows)
    first, mirrored = items[0].example, items[len(rows)].example
    assert mirrored.uid == first.uid + "-m" and mirrored.label is None
    assert (mirrored.fields["choice1"], mirrored.fields["choice2"]) == (first.fields["choice2"], first.fields["choice1"])


def test_longest_first_truncation_by_hand(tiny_backbone):
    # transformers 3.0.2's longest_first: one token at a time from the longer text, from the second on a tie;
    # [CLS] a [SEP] b [SEP] on BERT, segment 1 from b on. 6 + 3 + 3 specials = 12 -> 8: a loses 3 (6>3, 5>3, 4>3),
    # then the tie 3 = 3 cuts b
    tok = tiny_backbone("tiny-bert").tokenizer
    a, b = slow_text_ids(tok, "one two three four five six"), slow_text_ids(tok, "seven eight nine")
    assert len(a) == 6 and len(b) == 3
    out = pet_slow_pair(tok, "one two three four five six", "seven eight nine", 8)  # 12 -> 8: remove 4
    assert out["input_ids"] == [tok.cls_token_id, *a[:3], tok.sep_token_id, *b[:2], tok.sep_token_id]
    assert out["token_type_ids"] == [0] * 5 + [1] * 3
    tie = pet_slow_pair(tok, "one two", "three four", 6)  # 2 + 2 + 3 = 7 -> 6: the tie cuts the second text
    assert tie["input_ids"] == [tok.cls_token_id, *a[:2], tok.sep_token_id, *slow_text_ids(tok, "three"),
                                tok.sep_token_id]
    single = pet_slow_pair(tok, "one two three", None, 4)
    assert single["input_ids"] == [tok.cls_token_id, *a[:2], tok.sep_token_id]


def test_slow_ids_beside_special_token_strings(tiny_backbone):
    # 3.0.2 splits at special-token strings; ALBERT / BERT (plain-string specials) strip the text beside them,
    # RoBERTa's AddedToken(lstrip=False, rstrip=False) keeps it: "q </s> a" -> "q" "Ġ" "</s>" "Ġa"
    bert = tiny_backbone("tiny-bert").tokenizer
    assert slow_text_ids(bert, "why [SEP] yes") == [*slow_text_ids(bert, "why"), bert.sep_token_id,
                                                    *slow_text_ids(bert, "yes")]
    roberta = tiny_backbone("tiny-roberta").tokenizer
    ids = slow_text_ids(roberta, "why </s> yes")
    assert roberta.convert_ids_to_tokens(ids)[-3:] == ["Ġ", "</s>", "Ġyes"]
    assert slow_text_ids(roberta, "   ") == []


def test_slow_text_differs_from_fast_on_albert_digit_comma(tiny_backbone):
    tok = tiny_backbone("tiny-albert").tokenizer
    fast = tok.convert_ids_to_tokens(tok.encode("in 20, then", add_special_tokens=False))
    slow = tok.convert_ids_to_tokens(slow_text_ids(tok, "in 20, then"))
    assert "▁20," in fast and slow[1:3] == ["▁20", ","]


def test_pet_slow_refuses_other_forms():
    from bench.errors import ConfigError

    ex = sg.parse_rows("WiC", [{"idx": 0, "label": True, "word": "w", "sentence1": "a w", "sentence2": "b w",
                                "start1": 2, "end1": 3, "start2": 2, "end2": 3}], "train")[0]
    with pytest.raises(ConfigError, match="pet_slow"):
        classifier_item(ex, None, {"tokenization": "pet_slow", "classifier_inputs": "ptv2"}, "bert", 16)
    with pytest.raises(ConfigError, match="wic_classifier_inputs"):
        classifier_item(ex, None, {"wic_classifier_inputs": "words"}, "bert", 16)
