"""PT-Fewshot's prompt encoder (THUDM/P-tuning @f4225d4, its own ContinuousPrompt and generate_default_inputs in
its environment, golden ``prompt_encoder``) against the suite's ``PromptEncoder("lstm_full")`` with the same fixed
weights: equal to 1e-5 of the output's scale (docs/parity.md, FewGLUE)."""

import torch

from bench.parity import fewglue_prompt as fp
from bench.parity.golden import REL_TOL, load_golden


def test_prompt_encoder_matches_pt_fewshots():
    result = fp.compare()
    assert set(result) == {f"length{n}" for n in fp.LENGTHS}
    for case, diff in result.items():
        assert diff <= REL_TOL, (case, diff)


def test_the_check_can_fail():
    # the last layer's bias moved by 1e-3 moves the output past the tolerance, and so does a permuted LSTM
    from bench.parity.fewglue_losses import scaled_diff

    gold = load_golden("fewglue", fp.GOLDEN)
    n, dim = gold["lengths"][0], gold["embed_size"]
    theirs = gold["cases"][f"length{n}"]["output"]
    enc = fp.encoder(n, dim)
    with torch.no_grad():
        assert torch.tensor(theirs).shape == (n, dim)
        enc.mlp[2].bias += 1e-3
        assert scaled_diff(enc().tolist(), theirs) > REL_TOL
        enc = fp.encoder(n, dim)
        enc.lstm.weight_ih_l0.copy_(enc.lstm.weight_ih_l0.flip(0))
        assert scaled_diff(enc().tolist(), theirs) > REL_TOL
