"""The pretrained sentence pooler (dense + tanh over the first token) that P-Tuning v2's head reads.

THUDM/P-tuning-v2 (model/sequence_classification.py, ``BertPrefixForSequenceClassification`` L178 and
``RobertaPrefixForSequenceClassification`` L404) classifies ``outputs[1]`` of ``BertModel`` /
``RobertaModel``: ``tanh(W h_[CLS] + b)`` with the checkpoint's pooler weights, frozen with the rest
of the backbone (L111, L337). Masked-LM classes load without that pooler, so it is read from the
checkpoint files here (ALBERT's ``albert.pooler`` too: PET's ``AlbertForSequenceClassification`` reads it). A
checkpoint without pooler weights (RoBERTa's conversions, the suite's tiny
models) gets what ``from_pretrained`` gives the reference then: a fresh dense layer initialised like
transformers' ``_init_weights`` (normal, std ``initializer_range``; bias 0), frozen. ``source`` says which.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

SUFFIXES = ("pooler.dense.weight", "pooler.dense.bias",  # BERT / RoBERTa: pooler.dense
            "albert.pooler.weight", "albert.pooler.bias")  # ALBERT: the pooler is the dense layer itself


class Pooler(nn.Module):
    """``tanh(dense(hidden[:, 0]))``, the BertPooler / RobertaPooler layout; input is the first-token state."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.source = "fresh"

    def forward(self, first_token: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(first_token.to(self.dense.weight.dtype)))


def _checkpoint_files(model: nn.Module) -> list[Path]:
    folder = Path(str(getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "") or ""))
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.safetensors")) + sorted(folder.glob("pytorch_model*.bin"))


def checkpoint_pooler(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """``{"weight", "bias"}`` of the checkpoint's pooler dense layer, or None when it has none."""
    found: dict[str, torch.Tensor] = {}
    for path in _checkpoint_files(model):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
                    for suffix in SUFFIXES:
                        if key.endswith(suffix):
                            found[suffix.rsplit(".", 1)[1]] = handle.get_tensor(key)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            for key, value in state.items():
                for suffix in SUFFIXES:
                    if key.endswith(suffix):
                        found[suffix.rsplit(".", 1)[1]] = value
    return found if {"weight", "bias"} <= set(found) else None


def pretrained_pooler(model: nn.Module, hidden_size: int, seed: int = 0) -> Pooler:
    """The checkpoint's pooler (``source == "checkpoint"``) or a fresh one (``"fresh"``); frozen, eval mode."""
    pooler = Pooler(hidden_size)
    weights = checkpoint_pooler(model)
    if weights is not None:
        pooler.dense.load_state_dict(weights)
        pooler.source = "checkpoint"
    else:
        generator = torch.Generator().manual_seed(int(seed))
        std = float(getattr(model.config, "initializer_range", 0.02))
        with torch.no_grad():
            pooler.dense.weight.copy_(torch.randn(pooler.dense.weight.shape, generator=generator) * std)
            pooler.dense.bias.zero_()
    pooler.requires_grad_(False)
    return pooler.eval()
