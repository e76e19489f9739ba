"""PET multi-token decoding on a hand-made table of token probabilities (no model)."""

import math

import pytest
import torch

from bench.errors import ConfigError
from bench.prompts.multitoken import Entry, greedy_fill, iterative_scores, make_entry, parallel_scores
from bench.prompts.render import RenderedPrompt

VOCAB, MASK, PAD = 10, 1, 0


def _dist(probs: dict[int, float]) -> list[float]:
    rest = (1.0 - sum(probs.values())) / (VOCAB - len(probs))
    return [probs.get(t, rest) for t in range(VOCAB)]


# (input ids without padding, position) -> next-token distribution at that slot
TABLE = {
    ((2, MASK, MASK, 3), 1): _dist({5: 0.2, 4: 0.5}),
    ((2, MASK, MASK, 3), 2): _dist({7: 0.6}),
    ((2, MASK, 7, 3), 1): _dist({5: 0.5, 4: 0.3}),
    ((2, 5, MASK, 3), 2): _dist({7: 0.9}),
    ((2, 4, MASK, 3), 2): _dist({8: 0.7}),
    ((2, MASK, 3), 1): _dist({6: 0.25}),
}
CALLS: list[int] = []


def table_scorer(batch):
    CALLS.append(int(batch.target_rows.numel()))
    rows = []
    for row, col in zip(batch.target_rows.tolist(), batch.target_cols.tolist(), strict=True):
        length = int(batch.attention_mask[row].sum())
        key = (tuple(batch.input_ids[row, :length].tolist()), col)
        rows.append(TABLE[key])
    return torch.tensor(rows).log()


TWO = Entry([2, MASK, MASK, 3], [1, 2], [5, 7])
ONE = Entry([2, MASK, 3], [1], [6])


def test_most_confident_first_fills_the_surer_mask_first():
    # step 1: p(5@1)=0.2 < p(7@2)=0.6 -> fill position 2; step 2: p(5@1 | 7@2) = 0.5
    scores = iterative_scores(table_scorer, [TWO, ONE], PAD, "most_confident")
    assert scores.tolist() == pytest.approx([math.log(0.6 * 0.5), math.log(0.25)])


def test_left_to_right_and_parallel_orders_differ_from_most_confident():
    assert iterative_scores(table_scorer, [TWO], PAD, "ltr").item() == pytest.approx(math.log(0.2 * 0.9))
    assert iterative_scores(table_scorer, [TWO], PAD, "parallel").item() == pytest.approx(math.log(0.2 * 0.6))


def test_parallel_scores_is_one_pass_and_sums_per_entry_under_padding():
    CALLS.clear()
    scores = parallel_scores(table_scorer, [ONE, TWO], PAD)
    assert CALLS == [3]  # one forward pass, three target slots
    assert scores.tolist() == pytest.approx([math.log(0.25), math.log(0.2 * 0.6)])


def test_parallel_scores_carry_gradients_for_training():
    weight = torch.zeros(VOCAB, requires_grad=True)

    def scorer(batch):
        return weight.expand(int(batch.target_rows.numel()), VOCAB) + torch.tensor(0.0)

    scores = parallel_scores(scorer, [TWO], PAD)
    scores.sum().backward()
    # d/dw of log_softmax(w)[5] + log_softmax(w)[7] at w = 0: indicator - 2/V per token
    expected = [-2 / VOCAB] * VOCAB
    expected[5] += 1
    expected[7] += 1
    assert weight.grad.tolist() == pytest.approx(expected)


def test_greedy_fill_generates_most_confident_first_like_pet_wsc():
    # step 1: argmax at 1 is 4 (0.5), at 2 is 7 (0.6) -> fill 2 with 7; step 2: argmax at 1 is 5 (0.5)
    assert greedy_fill(table_scorer, [TWO], PAD, "most_confident") == [[5, 7]]
    assert greedy_fill(table_scorer, [TWO], PAD, "ltr") == [[4, 8]]
    assert greedy_fill(table_scorer, [TWO], PAD, "parallel") == [[4, 7]]


def test_make_entry_per_family():
    mlm = RenderedPrompt([2, MASK, MASK, 3], [1, 2])
    assert make_entry(mlm, [5, 7], "mlm") == TWO
    with pytest.raises(ConfigError, match="2 masks for a 1-token"):
        make_entry(mlm, [5], "mlm")
    clm = RenderedPrompt([2, 8, 9], [2])  # next-token logits at 9 predict the first candidate token
    entry = make_entry(clm, [5, 7, 4], "clm")
    assert (entry.input_ids, entry.target_positions, entry.family) == ([2, 8, 9, 5, 7], [2, 3, 4], "clm")
    t5 = RenderedPrompt([2, 99, 3], [1], decoder_input_ids=[0, 99])
    entry = make_entry(t5, [5, 7], "seq2seq")
    assert (entry.decoder_input_ids, entry.target_positions) == ([0, 99, 5], [1, 2])


def test_teacher_forced_entries_are_never_filled_in_place():
    entry = make_entry(RenderedPrompt([2, MASK, 3], [1]), [6], "mlm")
    clm = Entry(entry.input_ids, entry.target_positions, entry.token_ids, family="clm")
    assert iterative_scores(table_scorer, [clm], PAD, "most_confident").item() == pytest.approx(math.log(0.25))
    with pytest.raises(ConfigError, match="masked LM"):
        greedy_fill(table_scorer, [clm], PAD)
