"""SuperGLUE metrics on cases worked out by hand."""

import pytest

from bench.superglue.data import Example
from bench.superglue.metrics import (
    accuracy,
    f1_macro,
    multirc_scores,
    normalize_answer,
    per_class_f1,
    record_scores,
    superglue_metrics,
    token_f1,
    words_match,
)

CB = ("entailment", "contradiction", "neutral")


def test_cb_macro_f1_counts_a_never_predicted_class_as_zero():
    golds = ["entailment", "entailment", "contradiction", "neutral", "neutral"]
    preds = ["entailment", "contradiction", "contradiction", "entailment", "entailment"]
    # entailment: tp 1, fp 2, fn 1 -> P 1/3, R 1/2, F1 2/5; contradiction: tp 1, fp 1 -> F1 2/3; neutral: 0
    scores = per_class_f1(preds, golds, CB)
    assert scores == {"entailment": pytest.approx(0.4), "contradiction": pytest.approx(2 / 3), "neutral": 0.0}
    assert f1_macro(preds, golds, CB) == pytest.approx(16 / 45)
    assert accuracy(preds, golds) == pytest.approx(2 / 5)


def test_perfect_cb_predictions_score_one():
    golds = ["entailment", "contradiction", "neutral"]
    assert f1_macro(golds, golds, CB) == 1.0 and accuracy(golds, golds) == 1.0


def test_multirc_em_is_per_question_while_f1a_pools_answer_options():
    questions = ["q1", "q1", "q1", "q2", "q2", "q3"]
    golds = [1, 0, 1, 0, 1, 0]
    preds = [1, 0, 1, 1, 1, 0]
    # tp 3, fp 1, fn 0 -> P 3/4, R 1, F1a 6/7; q1 and q3 fully right, q2 not -> EM 2/3
    scores = multirc_scores(preds, golds, questions)
    assert scores["f1a"] == pytest.approx(6 / 7)
    assert scores["em"] == pytest.approx(2 / 3)
    assert (scores["n_questions"], scores["n_answers"]) == (3, 6)


def test_multirc_all_negative_predictions_give_zero_f1a_but_credit_em():
    scores = multirc_scores([0, 0, 0], [0, 0, 1], ["a", "b", "b"])
    assert scores["f1a"] == 0.0 and scores["em"] == pytest.approx(1 / 2)


def test_squad_normalisation_and_token_f1():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a day") == "apple day"
    # pred [tower, of, london] vs gold [london, tower]: 2 common, P 2/3, R 1 -> 0.8
    assert token_f1("Tower of London", "London Tower") == pytest.approx(0.8)


def test_record_takes_the_max_over_gold_answers_then_averages_queries():
    preds = ["the Eiffel Tower!", "Tower of London", "Barack Obama"]
    golds = [["Eiffel Tower", "Paris"], ["London Tower"], ["Obama", "President Obama"]]
    # F1: 1, 0.8, max(2/3, 1/2) = 2/3; EM: 1, 0, 0
    scores = record_scores(preds, golds)
    assert scores["f1"] == pytest.approx((1 + 0.8 + 2 / 3) / 3)
    assert scores["em"] == pytest.approx(1 / 3)
    assert scores["n_queries"] == 3


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        accuracy([1, 2], [1])


def test_wsc_words_match_rule():
    assert words_match("the demonstrators", "The demonstrators")
    assert words_match("demonstrators", "The city demonstrators")  # one word list inside the other
    assert not words_match("the councilmen", "The demonstrators")
    assert words_match("", "Tina")  # PET/T5 rule: an empty generation is contained in anything


def test_superglue_metrics_for_record_multirc_and_cb_examples():
    rec = [Example("ReCoRD", "q1", {}, 0, ("Paris", "Rome"), answers=("Rome",)),
           Example("ReCoRD", "q2", {}, 0, ("the Eiffel Tower", "Nice"), answers=("Eiffel Tower",))]
    out = superglue_metrics("ReCoRD", rec, [0, 0])  # "Paris" is wrong, "the Eiffel Tower" is right
    assert (out["overall"]["f1"], out["overall"]["em"], out["overall"]["score"]) == (0.5, 0.5, 0.5)
    assert out["groups"] == {}
    mrc = [Example("MultiRC", f"a{i}", {}, g, group=q) for i, (g, q) in enumerate([(1, "x"), (0, "x"), (1, "y")])]
    out = superglue_metrics("MultiRC", mrc, [1, 1, 1])  # tp 2, fp 1 -> F1a 4/5; EM: y only -> 1/2
    assert out["overall"]["f1a"] == pytest.approx(0.8) and out["overall"]["em"] == 0.5
    assert out["overall"]["score"] == pytest.approx(0.65)
    assert out["groups"]["1"] == {"n": 2, "n_predicted": 3, "accuracy": 1.0}
    cb = [Example("CB", str(i), {}, g) for i, g in enumerate([0, 0, 1, 2, 2])]
    out = superglue_metrics("CB", cb, [0, 1, 1, 0, 0])  # the first test's case, as label indices
    assert out["overall"]["f1_macro"] == pytest.approx(16 / 45)
    assert out["overall"]["score"] == pytest.approx((2 / 5 + 16 / 45) / 2)
    assert out["groups"]["neutral"] == {"n": 2, "n_predicted": 0, "accuracy": 0.0}
