"""AutoPrompt's label-token search (ucinlp/autoprompt ``label_search.py``) for classification.

With the masked LM frozen and the trigger tokens fixed, a linear layer (hidden -> classes) is
trained on the LM head's features at the [Y] slot (the head's output before its vocabulary
projection: BERT ``cls.predictions.transform``, RoBERTa ``lm_head.layer_norm``), Adam, cross-
entropy, ``epochs`` shuffled passes. A token's score for a class is the softmax over classes of
``W e_w`` (``e_w``: its row of the output embedding matrix); the ``k`` best tokens per class are
the label-token candidates. ALBERT (``predictions.LayerNorm``) is ours: the reference raises
NotImplementedError for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bench.backbones.scoring import pad_batch, sequence_hidden
from bench.errors import ConfigError
from bench.prompts.render import render
from bench.prompts.template import Template

# masked-LM class -> (module whose output is the feature, output embedding matrix), as attribute paths
FEATURES = {"BertForMaskedLM": ("cls.predictions.transform", "cls.predictions.decoder.weight"),
            "RobertaForMaskedLM": ("lm_head.layer_norm", "lm_head.decoder.weight"),
            "AlbertForMaskedLM": ("predictions.LayerNorm", "predictions.decoder.weight")}


@dataclass(frozen=True)
class LabelSearchSettings:
    """Defaults: the reference's argparse defaults."""

    epochs: int = 10  # --iters: passes over the training examples
    batch_size: int = 32  # --bsz
    lr: float = 3e-4  # --lr (Adam)
    k: int = 50  # --k: tokens kept per class
    seed: int = 0  # --seed


def _attr(model, path: str):
    for part in path.split("."):
        model = getattr(model, part)
    return model


def head_parts(model) -> tuple[nn.Module, torch.Tensor]:
    name = type(model).__name__
    if name not in FEATURES:
        raise ConfigError(f"label search: no feature layer known for {name} (BERT, RoBERTa, ALBERT masked LMs)")
    module, weight = FEATURES[name]
    return _attr(model, module), _attr(model, weight)


@torch.no_grad()
def features(model, tokenizer, family: str, template: Template, examples: Sequence[Mapping],
             trigger: Sequence[int], batch_size: int = 32) -> torch.Tensor:
    """(n, hidden) head features at the [Y] slot of every example, triggers filled in the [P] slots."""
    module, _ = head_parts(model)
    head = _attr(model, FEATURES[type(model).__name__][0].split(".")[0])
    device = next(model.parameters()).device
    out = []
    captured: list[torch.Tensor] = []
    hook = module.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        for start in range(0, len(examples), batch_size):
            rendered = [render(template, ex, tokenizer, family) for ex in examples[start : start + batch_size]]
            if any(len(r.soft_positions) != len(trigger) for r in rendered):
                raise ConfigError(f"template {template.text!r} has {len(rendered[0].soft_positions)} trigger slots, "
                                  f"the trigger {len(trigger)} tokens")
            batch = pad_batch([r.input_ids for r in rendered], [r.target_positions[:1] for r in rendered],
                              tokenizer.pad_token_id or 0, token_type_ids=[r.token_type_ids for r in rendered])
            for row, r in enumerate(rendered):
                batch.input_ids[row, r.soft_positions] = torch.tensor(list(trigger), dtype=torch.long)
            batch = batch.to(device)
            hidden = sequence_hidden(model, batch)[batch.target_rows, batch.target_cols]
            captured.clear()
            head(hidden)
            out.append(captured[-1].float().cpu())
    finally:
        hook.remove()
    return torch.cat(out)


def label_token_scores(projection: nn.Linear, output_embeddings: torch.Tensor) -> torch.Tensor:
    """(classes, vocab): per token, the softmax over classes of the projection of its output embedding."""
    with torch.no_grad():
        return F.softmax(projection.weight @ output_embeddings.float().T.to(projection.weight.device), dim=0)


def label_search(model, tokenizer, family: str, template: Template, examples: Sequence[Mapping],
                 labels: Sequence[int], n_classes: int, trigger: Sequence[int] | None = None,
                 settings: LabelSearchSettings = LabelSearchSettings(), progress: bool = True) -> dict:
    """Train the projection and return ``{"tokens": [[k best tokens] per class], "scores", "losses"}``.

    ``trigger``: the trigger token ids (None: [MASK] in every slot, the reference's default)."""
    if len(examples) != len(labels):
        raise ValueError(f"{len(examples)} examples but {len(labels)} labels")
    n_slots = template.num_soft
    trigger = list(trigger) if trigger is not None else [tokenizer.mask_token_id] * n_slots
    feats = features(model, tokenizer, family, template, examples, trigger)  # the backbone is frozen: once
    gold = torch.tensor(list(labels), dtype=torch.long)
    torch.manual_seed(settings.seed)
    projection = nn.Linear(feats.size(1), n_classes)
    optimizer = torch.optim.Adam(projection.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    losses = []
    for _ in tqdm(range(settings.epochs), desc="label search", unit="epoch", disable=not progress):
        total = 0.0
        order = torch.randperm(len(gold), generator=gen)
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(projection(feats[idx]), gold[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(gold))
    _, weight = head_parts(model)
    scores = label_token_scores(projection, weight.detach().cpu())
    top = scores.topk(min(settings.k, scores.size(1)), dim=1)
    return {"tokens": [tokenizer.convert_ids_to_tokens(row.tolist()) for row in top.indices],
            "ids": top.indices.tolist(), "scores": top.values.tolist(), "losses": losses,
            "projection": projection, "trigger": trigger}
