"""The PET / PT-Fewshot reproduction flags on hand-made cases (the golden files show them on FewGLUE rows)."""

import random

from bench.prompts.render import RenderedPrompt
from bench.superglue.task import _drop_masks


def test_slow_albert_splits_a_digit_before_a_comma(tiny_backbone):
    from bench.prompts.pieces import encode_piece, slow_sentencepiece_ids

    tok = tiny_backbone("tiny-albert").tokenizer
    ids = encode_piece(tok, "on june 20, 2015 by 3, 5", space_before=True)
    assert "▁20," in tok.convert_ids_to_tokens(ids)  # the fast tokenizer keeps the piece
    tokens = tok.convert_ids_to_tokens(slow_sentencepiece_ids(tok, ids))
    assert tokens == ["▁on", "▁june", "▁20", ",", "▁2015", "▁by", "▁3", ",", "▁5"]
    plain = encode_piece(tok, "no digits, here", space_before=True)
    assert slow_sentencepiece_ids(tok, plain) == plain


def test_slow_rule_leaves_wordpiece_alone(tiny_backbone):
    from bench.prompts.pieces import encode_piece, slow_sentencepiece_ids

    tok = tiny_backbone("tiny-bert").tokenizer
    ids = encode_piece(tok, "June 20, 2015", space_before=True)
    assert slow_sentencepiece_ids(tok, ids) == ids


def test_drop_masks_keeps_the_first_masks_and_shifts_what_follows():
    # [CLS] a M M M . [SEP] with a pseudo token after the masks at 5 -> keep 1 mask
    rendered = RenderedPrompt([2, 10, 4, 4, 4, 99, 8, 3], [2, 3, 4], soft_positions=[5], token_type_ids=None)
    out = _drop_masks(rendered, 1)
    assert out.input_ids == [2, 10, 4, 99, 8, 3]
    assert out.target_positions == [2] and out.soft_positions == [3]


def test_pet_pad_draws_follow_one_stream_after_the_scoring_draws():
    # PET: one Random(42) per pattern; scoring the n training examples before training draws first
    n = 5
    rng = random.Random(42)
    stream = [rng.randint(0, 3) for _ in range(2 * n)]
    from types import SimpleNamespace

    from bench.superglue.task import ClassificationTask

    fake = SimpleNamespace(task_cfg={"wsc_pad_draws": "pet"})
    assert ClassificationTask._pet_pad_draws(fake, n) == stream[n:]
    fake.task_cfg = {}
    assert ClassificationTask._pet_pad_draws(fake, n) == [None] * n


def test_copa_train_accuracy_scores_the_mirrored_set_as_pet_does():
    # item J: PET's train_set_before_training scores COPA's 64 mirrored examples, not the 32 originals
    from types import SimpleNamespace

    from bench.superglue import data as sg
    from bench.superglue.pet_stage import train_accuracy

    originals = [sg.Example("COPA", f"train-{i}", {"choice1": "A.", "choice2": "B.", "choice1_lc": "a", "choice2_lc": "b"}, 0, ("a", "b"))
                 for i in range(4)]
    cache = {"train": originals}

    def predict(split, scorer):  # right on every original, wrong on every mirrored copy
        return [ex.label if not ex.uid.endswith("-m") else 1 - ex.label for ex in cache[split]]

    task = SimpleNamespace(task="COPA", task_cfg={}, _examples=cache, examples=cache.__getitem__, predict=predict)
    assert train_accuracy(task, None) == 0.5  # 4 of 8
    task.task_cfg = {"mirror_copa": False}
    assert train_accuracy(task, None) == 1.0
