"""Prompt encoders: trainable modules that produce the vectors of K prompts of n pseudo tokens.

Every encoder starts from an ``Embedding(K * n, dim)`` (one row per pseudo token of every prompt)
and returns a ``(K * n, dim)`` tensor laid out prompt by prompt, which is exactly how
``bench.backbones.scoring.pad_batch`` numbers pseudo-token slots (prompt k, token j -> k * n + j).
``dim`` is the backbone's *input embedding* size (ALBERT: E, not the hidden size H).

- ``identity``: the embedding rows themselves (Lester et al.'s prompt tuning).
- ``lstm``: P-Tuning (Liu et al. 2021; THUDM/P-tuning ``LAMA/p_tuning/prompt_encoder.py``):
  a 2-layer bidirectional LSTM with ``hidden // 2`` units per direction run over the n tokens of
  a prompt as ONE sequence (across all ``[P:n]`` blocks), then ``Linear(hidden, hidden) -> ReLU ->
  Linear(hidden, dim)``; ``hidden`` defaults to ``dim`` (the paper's h -> h/2 -> h -> h).
- ``lstm_full``: P-Tuning's few-shot encoder (THUDM/P-tuning ``PT-Fewshot/pet/wrapper.py``): a 2-layer
  bi-LSTM with ``hidden`` units *per direction*, then ``Linear(2 hidden, hidden) -> ReLU ->
  Linear(hidden, dim)`` (the reference has ``hidden = dim = 128``, ALBERT's embedding size).
- ``mlp``: the embedding through an MLP of ``mlp_layers`` Linear layers with ReLU between them
  (``dim -> hidden -> ... -> dim``); 2 by default (the paper's head without the LSTM); 3 layers
  with ``hidden`` = PEFT's ``encoder_hidden_size`` is PEFT's MLP reparameterisation.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import ConfigError

ENCODERS = ("lstm", "lstm_full", "mlp", "identity")


def _mlp(dim: int, hidden: int, layers: int) -> nn.Sequential:
    if layers < 1:
        raise ConfigError(f"mlp_layers must be >= 1, got {layers}")
    sizes = [dim] + [hidden] * (layers - 1) + [dim]
    modules: list[nn.Module] = []
    for i in range(layers):
        if i:
            modules.append(nn.ReLU())
        modules.append(nn.Linear(sizes[i], sizes[i + 1]))
    return nn.Sequential(*modules)


class PromptEncoder(nn.Module):
    """K prompts of ``num_tokens`` pseudo tokens each; ``forward()`` -> ``(K * num_tokens, dim)``."""

    def __init__(self, kind: str, num_tokens: int, dim: int, num_prompts: int = 1, hidden_size: int | None = None,
                 dropout: float = 0.0, mlp_layers: int = 2, lstm_layers: int = 2) -> None:
        super().__init__()
        if kind not in ENCODERS:
            raise ConfigError(f"unknown prompt encoder {kind!r}; expected one of {', '.join(ENCODERS)}")
        if num_tokens < 1 or num_prompts < 1:
            raise ConfigError(f"a prompt encoder needs >= 1 token and prompt, got {num_tokens} x {num_prompts}")
        self.kind, self.num_tokens, self.num_prompts, self.dim = kind, num_tokens, num_prompts, dim
        hidden = int(hidden_size or dim)
        self.embedding = nn.Embedding(num_prompts * num_tokens, dim)
        if kind == "lstm_full":
            self.lstm = nn.LSTM(input_size=dim, hidden_size=hidden, num_layers=lstm_layers,
                                dropout=dropout if lstm_layers > 1 else 0.0, bidirectional=True, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        elif kind == "lstm":
            if hidden % 2:
                raise ConfigError(f"the bidirectional LSTM encoder needs an even hidden size, got {hidden}")
            self.lstm = nn.LSTM(input_size=dim, hidden_size=hidden // 2, num_layers=lstm_layers,
                                dropout=dropout if lstm_layers > 1 else 0.0, bidirectional=True, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        elif kind == "mlp":
            self.mlp = _mlp(dim, hidden, mlp_layers)

    def forward(self) -> torch.Tensor:
        x = self.embedding.weight.view(self.num_prompts, self.num_tokens, self.dim)
        if self.kind in ("lstm", "lstm_full"):
            x = self.mlp(self.lstm(x)[0])
        elif self.kind == "mlp":
            x = self.mlp(x)
        return x.reshape(self.num_prompts * self.num_tokens, self.dim)

