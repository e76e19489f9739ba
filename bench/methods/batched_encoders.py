"""Many members' prompt encoders in one batched computation (bench.joint, issue 29).

K members of a joint run each own a :class:`~bench.methods.prompt_encoders.PromptEncoder` of the
same shape. Run one by one, each costs a few dozen small kernels (forward and backward); here their
weights are stacked along a leading member axis (``torch.stack`` of each member's own Parameters, so
the backward pass hands every member exactly its own gradient) and run as batched matrix products.

torch has no ``nn.LSTM`` with per-batch-entry weights, hence :func:`stacked_lstm`: nn.LSTM's
equations and gate order (input, forget, cell, output; ``gates = x W_ih^T + b_ih + h W_hh^T + b_hh``;
``c' = f c + i g``, ``h' = o tanh(c')``; zero initial state; the reverse direction reads the sequence
backwards; a layer's input is the previous layer's forward and backward outputs concatenated), one
time step after another, both directions of all members in one ``baddbmm`` per step. Checked
against ``nn.LSTM`` in tests/test_joint_batched.py.

Only encoders that draw no random numbers batch (no LSTM dropout while training): their members'
separate runs would otherwise draw from their own RNG streams in between.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bench.methods.prompt_encoders import PromptEncoder

BATCHED_KINDS = ("lstm", "lstm_full", "mlp")


def signature(encoder: PromptEncoder) -> tuple | None:
    """Encoders with equal signatures batch together; None: this one runs on its own."""
    if not isinstance(encoder, PromptEncoder) or encoder.kind not in BATCHED_KINDS:
        return None
    lstm = getattr(encoder, "lstm", None)
    if lstm is not None and (lstm.proj_size or not lstm.batch_first or
                             (lstm.dropout and lstm.num_layers > 1 and lstm.training)):
        return None  # projections are not written here; dropout between layers draws random numbers
    shapes = tuple((name, tuple(p.shape), p.dtype, p.device) for name, p in encoder.named_parameters())
    layout = tuple(type(m).__name__ for m in encoder.mlp)
    return (encoder.kind, encoder.num_prompts, encoder.num_tokens, shapes, layout)


def stacked_lstm(x: torch.Tensor, lstm: Sequence[nn.LSTM]) -> torch.Tensor:
    """``[lstm[k](x[k])[0] for k]`` stacked: x ``(K, B, T, in)`` -> ``(K, B, T, D * hidden)``, one computation.

    Every module must be batch_first, without projections and with the same sizes; dropout between
    layers is not applied (call it only where nn.LSTM would not draw it: eval mode or dropout 0).
    """
    first = lstm[0]
    k, b, t, _ = x.shape
    hidden, dirs = first.hidden_size, 2 if first.bidirectional else 1
    suffixes = ["", "_reverse"][:dirs]
    for layer in range(first.num_layers):
        names = [f"l{layer}{s}" for s in suffixes]

        def stack(kind: str, names: list[str] = names) -> torch.Tensor:  # (dirs * K, ...): direction-major
            return torch.stack([getattr(m, f"{kind}_{n}") for n in names for m in lstm])

        w_ih, w_hh = stack("weight_ih"), stack("weight_hh")  # (D K, 4h, in), (D K, 4h, h)
        bias = (stack("bias_ih") + stack("bias_hh")).unsqueeze(1) if first.bias else None  # (D K, 1, 4h)
        inputs = torch.cat([x, x.flip(2)] if dirs == 2 else [x])  # the reverse direction reads backwards
        flat = inputs.reshape(dirs * k, b * t, -1)
        pre = (torch.baddbmm(bias, flat, w_ih.transpose(1, 2)) if bias is not None
               else torch.bmm(flat, w_ih.transpose(1, 2))).view(dirs * k, b, t, 4 * hidden)
        h = x.new_zeros(dirs * k, b, hidden)
        c = x.new_zeros(dirs * k, b, hidden)
        w_hh_t = w_hh.transpose(1, 2)
        outputs = []
        for step in range(t):
            gates = torch.baddbmm(pre[:, :, step], h, w_hh_t)  # (D K, B, 4h)
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        out = torch.stack(outputs, dim=2)  # (D K, B, T, h)
        x = torch.cat([out[:k], out[k:].flip(2)], dim=-1) if dirs == 2 else out
    return x


def stacked_mlp(x: torch.Tensor, mlps: Sequence[nn.Sequential]) -> torch.Tensor:
    """``[mlps[k](x[k]) for k]`` stacked, for Sequentials of Linear and ReLU: x ``(K, N, in)``."""
    for position, module in enumerate(mlps[0]):
        if isinstance(module, nn.Linear):
            weight = torch.stack([m[position].weight for m in mlps]).transpose(1, 2)
            x = (torch.baddbmm(torch.stack([m[position].bias for m in mlps]).unsqueeze(1), x, weight)
                 if module.bias is not None else torch.bmm(x, weight))
        elif isinstance(module, nn.ReLU):
            x = torch.relu(x)
        else:
            raise TypeError(f"stacked_mlp: {type(module).__name__} is not batched here")
    return x


def stacked_forward(encoders: Sequence[PromptEncoder]) -> list[torch.Tensor]:
    """``[e() for e in encoders]`` in one batched computation; all must share one :func:`signature`."""
    sig = signature(encoders[0])
    if sig is None or any(signature(e) != sig for e in encoders):
        raise ValueError("stacked_forward: the encoders differ in shape or cannot batch (see signature)")
    first = encoders[0]
    k, prompts, tokens, dim = len(encoders), first.num_prompts, first.num_tokens, first.dim
    x = torch.stack([e.embedding.weight for e in encoders]).view(k, prompts, tokens, dim)
    if first.kind in ("lstm", "lstm_full"):
        x = stacked_lstm(x, [e.lstm for e in encoders])
    x = stacked_mlp(x.reshape(k, prompts * tokens, -1), [e.mlp for e in encoders])
    return list(x.reshape(k, prompts * tokens, dim).unbind(0))


def batched_vectors(encoders: Sequence[PromptEncoder]) -> list[torch.Tensor | None]:
    """Each encoder's output where it batches with at least one other (same signature), else None."""
    groups: dict[tuple, list[int]] = {}
    for i, encoder in enumerate(encoders):
        sig = signature(encoder)
        if sig is not None:
            groups.setdefault(sig, []).append(i)
    out: list[torch.Tensor | None] = [None] * len(encoders)
    for members in groups.values():
        if len(members) > 1:
            for i, vectors in zip(members, stacked_forward([encoders[i] for i in members]), strict=True):
                out[i] = vectors
    return out


__all__ = ["batched_vectors", "signature", "stacked_forward", "stacked_lstm", "stacked_mlp"]
