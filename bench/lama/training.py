"""One LAMA relation as a trainable task (P-Tuning's LAMA setting).

- training batches: the relation's train facts (kept by the same vocabulary filter as the
  evaluation), rendered with the method's template, shuffled each epoch with the loop's generator;
- loss: cross-entropy over the FULL vocabulary at the target slot (THUDM/P-tuning passes
  ``labels`` to the LM, whose loss is a full-vocabulary softmax), mean over the batch;
  ``train_shift`` moves the trained slot (``task.protocol=reference`` on GPT-2: -1, the position
  the reference's shifted label trains; evaluation keeps the rendered slot);
- ``drop_last``: the last partial batch of each epoch is left out (the reference's DataLoader);
- ``evaluate(split)``: P@1 with the vocabulary restriction (``bench.lama.evaluation``); the
  selection value is that relation's P@1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.backbones.scoring import ScoringBatch
from bench.errors import ConfigError
from bench.lama import data as lama_data
from bench.lama.evaluation import Candidates, LamaItem, collate, predict, render_facts, score_items
from bench.prompts.template import Template


@dataclass
class LabeledBatch(ScoringBatch):
    """A scoring batch with the gold token id of each target slot."""

    labels: torch.Tensor | None = None  # (n_targets,)

    def to(self, device: torch.device, non_blocking: bool = False) -> LabeledBatch:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return LabeledBatch(**{k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
                               for k, v in values.items()})


def pad_id_of(tokenizer) -> int:
    """The id padded slots get (GPT-2 has no pad token; padded slots are masked anyway)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id or 0)


def split_items(relation: str, split: str, template: Template, backbone, candidates: Candidates,
                task_cfg: Mapping, limit: int | None = None) -> tuple[list[LamaItem] | None, dict]:
    """Rendered facts of one relation and split (None when the file is missing) and filter counts."""
    facts = lama_data.load_facts(relation, split, task_cfg["variant"], train_facts=lama_data.train_facts_of(task_cfg))
    if facts is None:
        return None, {"file": "missing"}
    kept, dropped = lama_data.filter_facts(facts, set(candidates.word_to_id),
                                           include_reconstructed=task_cfg.get("include_reconstructed", True))
    counts = {"n_file": len(facts), "n_kept": len(kept), "n_dropped_vocab": len(dropped)}
    if limit:
        kept = kept[: int(limit)]
    items = render_facts(kept, template, backbone.tokenizer, backbone.family, candidates,
                         max_length=task_cfg.get("max_length"), protocol=lama_data.protocol_of(task_cfg))
    return items, counts


class LamaRelationTask:
    """Train / evaluate one relation; ``items`` maps split -> rendered facts."""

    def __init__(self, relation: str, items: Mapping[str, Sequence[LamaItem]], candidates: Candidates,
                 pad_id: int, device: torch.device | None = None, eval_batch_size: int = 64,
                 train_shift: int = 0) -> None:
        if not items.get("train"):
            raise ValueError(f"relation {relation}: no training facts")
        self.relation, self.items, self.candidates = relation, dict(items), candidates
        self.pad_id, self.device = pad_id, device or torch.device("cpu")
        self.eval_batch_size, self.train_shift = eval_batch_size, train_shift

    def train_batches(self, batch_size: int, generator: torch.Generator, drop_last: bool = False) -> list[LabeledBatch]:
        train = self.items["train"]
        order = torch.randperm(len(train), generator=generator).tolist()
        batches = []
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for start in range(0, stop, batch_size):
            chosen = [train[i] for i in order[start : start + batch_size]]
            batch = collate(chosen, self.pad_id)
            if self.train_shift:
                batch.target_cols = batch.target_cols + self.train_shift
                if int(batch.target_cols.min()) < 0:
                    raise ConfigError(f"relation {self.relation}: a one-token query has no position before its "
                                      "target, so the reference's shifted training label trains nothing")
            labels = torch.tensor([it.gold_id for it in chosen for _ in it.target_positions], dtype=torch.long)
            fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
            batches.append(LabeledBatch(**fields, labels=labels).to(self.device))
        return batches

    def loss(self, scores: torch.Tensor, batch: LabeledBatch) -> torch.Tensor:
        return F.cross_entropy(scores.float(), batch.labels)

    def predictions(self, split: str, scorer: Callable) -> list[int]:
        return predict(self.items[split], scorer, self.candidates, self.pad_id, batch_size=self.eval_batch_size,
                       device=self.device, desc=f"LAMA {self.relation} {split}")

    def evaluate(self, split: str, scorer: Callable) -> tuple[dict, float]:
        items = self.items.get(split) or []
        if not items:
            return {}, 0.0
        metrics = score_items(items, self.predictions(split, scorer))
        return metrics, float(metrics["groups"][self.relation]["p_at_1"])
