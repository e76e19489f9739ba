"""The batched parts of joint training (bench.methods.batched_encoders) against the per-member computation
(and the speed bench's FLOP count of a joint step, by hand):
K members' prompt encoders stacked into one computation give each member's own ``nn.LSTM`` / encoder output
and each member's own gradients (fp32, CPU, to 1e-6)."""

import pytest
import torch
from torch import nn

from bench.methods.batched_encoders import batched_vectors, signature, stacked_forward, stacked_lstm
from bench.methods.prompt_encoders import PromptEncoder


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-6) -> bool:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


@pytest.mark.parametrize(("layers", "bidirectional", "bias"), [(2, True, True), (1, False, True), (2, True, False)])
def test_stacked_lstm_equals_each_members_nn_lstm(layers, bidirectional, bias):
    """Outputs, input gradients and every weight's gradient against each member's own nn.LSTM."""
    torch.manual_seed(0)
    k, batch, steps, size, hidden = 3, 2, 5, 6, 4
    lstms = [nn.LSTM(size, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True, bias=bias)
             for _ in range(k)]
    for m in lstms:  # weights far from the default init's small range: saturating gates are exercised too
        for p in m.parameters():
            nn.init.uniform_(p, -1.5, 1.5)
    x = torch.randn(k, batch, steps, size)
    weights = torch.randn(k, batch, steps, hidden * (2 if bidirectional else 1))  # a loss that weighs every output

    x_sep = x.clone().requires_grad_(True)
    separate = [m(x_sep[i])[0] for i, m in enumerate(lstms)]
    sum((w * out).sum() for w, out in zip(weights, separate, strict=True)).backward()
    grads_sep = [[p.grad.clone() for p in m.parameters()] for m in lstms]
    for m in lstms:
        m.zero_grad()

    x_st = x.clone().requires_grad_(True)
    stacked = stacked_lstm(x_st, lstms)
    (weights * stacked).sum().backward()
    for i in range(k):
        assert close(stacked[i], separate[i])
        for mine, theirs in zip((p.grad for p in lstms[i].parameters()), grads_sep[i], strict=True):
            assert close(mine, theirs)
    assert close(x_st.grad, x_sep.grad)
    assert float(stacked.detach().abs().max()) > 0.1  # not a trivially zero output


@pytest.mark.parametrize("kind", ["lstm", "lstm_full", "mlp"])
def test_stacked_forward_equals_each_encoder_with_own_gradients(kind):
    """Two prompts of 3 pseudo tokens per member (P-Tuning's encoders, mlp with 3 layers), four members."""
    torch.manual_seed(1)
    encoders = [PromptEncoder(kind, 3, 8, num_prompts=2, hidden_size=6, mlp_layers=3) for _ in range(4)]
    targets = [torch.randn(6, 8) for _ in encoders]
    separate = [e() for e in encoders]
    sum((t * out).sum() for t, out in zip(targets, separate, strict=True)).backward()
    grads = [{n: p.grad.clone() for n, p in e.named_parameters()} for e in encoders]
    for e in encoders:
        e.zero_grad()
    stacked = stacked_forward(encoders)
    sum((t * out).sum() for t, out in zip(targets, stacked, strict=True)).backward()
    for e, out, ref, own in zip(encoders, stacked, separate, grads, strict=True):
        assert out.shape == (6, 8) and close(out, ref)
        for name, p in e.named_parameters():
            assert close(p.grad, own[name]), name  # each member's own gradient, nobody else's


def test_batched_vectors_groups_by_shape_and_leaves_random_or_lone_encoders_alone():
    torch.manual_seed(2)
    a = [PromptEncoder("lstm", 3, 8) for _ in range(2)]
    b = [PromptEncoder("lstm", 4, 8) for _ in range(2)]  # another prompt length: its own group
    lone = PromptEncoder("mlp", 3, 8)  # nobody to batch with
    identity = PromptEncoder("identity", 3, 8)  # nothing to batch
    dropping = [PromptEncoder("lstm_full", 3, 8, dropout=0.5) for _ in range(2)]  # draws between its layers
    encoders = [a[0], b[0], lone, identity, a[1], dropping[0], b[1], dropping[1]]
    out = batched_vectors(encoders)
    assert [v is not None for v in out] == [True, True, False, False, True, False, True, False]
    for e, v in zip(encoders, out, strict=True):
        if v is not None:
            assert close(v, e())
    for e in dropping:
        e.eval()  # eval mode draws nothing: they batch
    assert signature(dropping[0]) is not None and all(v is not None for v in batched_vectors(dropping))
    with pytest.raises(ValueError, match="differ"):
        stacked_forward([a[0], b[0]])


def test_joint_step_flops_counted_from_the_shapes_by_hand():
    """bench.speed.joint.step_flops on a made-up BERT shape (hidden 4, 1 layer, inner 8, vocab 10):
    per token 2 x (4 h^2 + 2 h inner) = 2 x (64 + 64) = 256; attention per row 2 x 2 x w^2 x h = 16 w^2;
    head per target 2 x (h^2 + h vocab) = 2 x (16 + 40) = 112. Two rows of width 3, two targets:
    M = 2 x 3 x 256 = 1536, A = 2 x 16 x 9 = 288, H = 2 x 112 = 224; step = 2 M + 3 A + 2 H = 4384."""
    from bench.speed.joint import step_flops
    from bench.speed.shapes import Shape

    spec = Shape("made-up", "mlm", "bert", "bert-base-cased", "BertConfig",
                 {"hidden_size": 4, "num_hidden_layers": 1, "intermediate_size": 8, "vocab_size": 10}, "by hand")
    assert step_flops(spec, rows=2, width=3, targets=2, causal=False) == 4384


def test_fused_adam_round_equals_each_members_own_optimizer_step():
    """Four members (Adam with L2 decay at two learning rates, AdamW, one with a scheduler), three rounds:
    stepping through FusedAdam gives each member's own Adam/AdamW result. In round 1 each optimizer is
    updated alone when it first steps (found by the hook; state created as its step() would); from round 2
    all four in one call."""
    from bench.joint_optim import FusedAdam

    def members():
        torch.manual_seed(3)
        mods = [nn.Linear(5, 3) for _ in range(4)]
        opts = [torch.optim.Adam(mods[0].parameters(), lr=1e-2, weight_decay=5e-4),
                torch.optim.Adam(mods[1].parameters(), lr=1e-2, weight_decay=5e-4),
                torch.optim.Adam(mods[2].parameters(), lr=3e-3),
                torch.optim.AdamW(mods[3].parameters(), lr=2e-2, weight_decay=0.1)]
        return mods, opts, torch.optim.lr_scheduler.ExponentialLR(opts[1], gamma=0.5)

    def grads(mods, round_):
        for i, m in enumerate(mods):
            x = torch.randn(4, 5, generator=torch.Generator().manual_seed(10 * round_ + i))
            m(x).pow(2).sum().backward()

    ref_mods, ref_opts, ref_sched = members()
    for r in range(3):
        grads(ref_mods, r)
        for opt in ref_opts:
            opt.step()
            opt.zero_grad(set_to_none=True)
        ref_sched.step()

    mods, opts, sched = members()
    fused = FusedAdam([list(m.parameters()) for m in mods])
    with fused:
        for r in range(3):
            grads(mods, r)
            with fused.round(range(4)):
                for opt in opts:  # each member's own step in its turn, as fit_steps does
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            sched.step()
    assert fused.fused_steps == 12 and fused.largest == 4
    outside = torch.optim.Adam(nn.Linear(2, 2).parameters())  # not a member: the hook is gone and ignored it
    assert fused.active is None and outside.step() is None
    start = members()[0]
    for m, ref, first in zip(mods, ref_mods, start, strict=True):
        for p, q in zip(m.parameters(), ref.parameters(), strict=True):
            assert close(p, q, 1e-6)
        assert float((ref.weight - first.weight).detach().abs().max()) > 1e-3  # they did move
