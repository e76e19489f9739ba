"""P@1 on hand-made cases: per relation, macro over relations, pooled, real-only subset."""

import pytest

from bench.metrics import FactOutcome, p_at_1


def test_p_at_1_macro_and_pooled_by_hand():
    # P1: 3 facts, 2 right (2/3); P2: 1 fact, right (1/1); P3: 4 facts, 1 right (1/4)
    outcomes = [FactOutcome("P1", c) for c in (True, True, False)] + [FactOutcome("P2", True)]
    outcomes += [FactOutcome("P3", c) for c in (True, False, False, False)]
    result = p_at_1(outcomes)
    assert result["groups"]["P1"] == {"n": 3, "hits": 2, "n_reconstructed": 0, "p_at_1": pytest.approx(2 / 3)}
    overall = result["overall"]
    assert overall["macro_over_relations"] == pytest.approx((2 / 3 + 1 + 1 / 4) / 3)
    assert overall["pooled"] == pytest.approx(4 / 8)
    assert (overall["n_facts"], overall["n_hits"], overall["n_relations"]) == (8, 4, 3)


def test_real_only_subset_drops_reconstructed_facts_and_empty_relations():
    outcomes = [FactOutcome("P1", True, reconstructed=False), FactOutcome("P1", False, reconstructed=True),
                FactOutcome("P2", True, reconstructed=True)]
    result = p_at_1(outcomes)
    assert result["overall"]["pooled"] == pytest.approx(2 / 3)
    real = result["subsets"]["real_only"]
    assert real == {"macro_over_relations": 1.0, "pooled": 1.0, "n_facts": 1, "n_hits": 1, "n_relations": 1}
    assert result["groups"]["P1"]["n_reconstructed"] == 1


def test_empty_outcomes_give_none_not_zero():
    overall = p_at_1([])["overall"]
    assert overall["macro_over_relations"] is None and overall["pooled"] is None
