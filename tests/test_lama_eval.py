"""LAMA scoring on hand-made cases: gather-restricted argmax, length-sorted batching, P@1."""

import torch

from bench.lama.data import Fact, filter_facts
from bench.lama.evaluation import Candidates, LamaItem, length_sorted_batches, predict, score_items


def _item(relation, obj, length, gold, reconstructed=False):
    fact = Fact(relation, "s", obj, reconstructed=reconstructed)
    return LamaItem(fact, list(range(1, length + 1)), [length - 1], None, gold, [])


def test_restricted_argmax_ignores_tokens_outside_the_vocabulary():
    # vocab of 10; candidates 5, 7, 9. Full argmax would be token 3 (not allowed).
    table = {3: [0, 0, 0, 9, 0, 1, 0, 2, 0, 0],  # length-3 item: best allowed = 7
             4: [0, 0, 0, 9, 0, 0, 0, 0, 0, 3],  # length-4 item: best allowed = 9
             2: [8, 0, 0, 0, 0, 5, 0, 4, 0, 0]}  # length-2 item: best allowed = 5

    def scorer(batch):
        lengths = batch.attention_mask.sum(dim=1)
        return torch.tensor([table[int(lengths[r])] for r in batch.target_rows], dtype=torch.float)

    items = [_item("P1", "a", 3, 7), _item("P1", "b", 4, 5), _item("P2", "c", 2, 5)]
    cands = Candidates({"x": 5, "y": 7, "z": 9}, torch.tensor([5, 7, 9]), 3)
    predictions = predict(items, scorer, cands, pad_id=0, batch_size=2)
    assert predictions == [7, 9, 5]
    # plain reference: one item at a time, mask out non-candidates, argmax
    for item, pred in zip(items, predictions, strict=True):
        logits = torch.tensor(table[len(item.input_ids)], dtype=torch.float)
        masked = torch.full_like(logits, float("-inf"))
        masked[[5, 7, 9]] = logits[[5, 7, 9]]
        assert int(masked.argmax()) == pred
    result = score_items(items, predictions)
    assert result["groups"]["P1"]["p_at_1"] == 0.5 and result["groups"]["P2"]["p_at_1"] == 1.0
    assert result["overall"]["macro_over_relations"] == 0.75
    assert abs(result["overall"]["pooled"] - 2 / 3) < 1e-12


def test_batches_are_length_sorted_and_cover_every_item_once():
    items = [_item("P1", "a", n, 0) for n in (5, 2, 9, 2, 7)]
    batches = length_sorted_batches(items, 2)
    assert batches == [[2, 4], [0, 1], [3]]


def test_filter_drops_objects_outside_vocab_and_optionally_reconstructed():
    facts = [Fact("P1", "s", "Paris"), Fact("P1", "s", "Saint-Denis"), Fact("P1", "s", "Rome", reconstructed=True)]
    kept, dropped = filter_facts(facts, {"Paris", "Rome"})
    assert [f.obj_label for f in kept] == ["Paris", "Rome"] and [f.obj_label for f in dropped] == ["Saint-Denis"]
    kept, _ = filter_facts(facts, {"Paris", "Rome"}, include_reconstructed=False)
    assert [f.obj_label for f in kept] == ["Paris"]


def test_byte_level_vocab_entries_become_plain_words():
    from bench.lama.data import token_to_word

    assert token_to_word("ĠParis") == "Paris"
    assert token_to_word("ĠMÃ¼nchen") == "München"  # GPT-2 byte alphabet: Ã¼ is the two bytes of ü
    assert token_to_word("Paris") == "Paris"  # WordPiece lists are plain words already
