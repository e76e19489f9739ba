"""PET's final step: a sequence classifier distilled on the pattern ensemble's soft labels.

``task.runner: bench.superglue.distill.run_distillation`` with ``method=finetune`` (a classifier
head on the backbone, plain text pairs). The PET pattern records the run's preset needs (``needs:``,
every pattern x repetition of one config, resolved by exact name before weights load by
:mod:`bench.inputs` and listed in the record's ``inputs``; ``extra.pet``) are merged by
:func:`bench.superglue.pet_stage.ensemble_from_records` (iPET: the runs of generation
``trainer.ipet_generation``) (``trainer.distill_reduction``, PET: ``wmean``); the classifier trains on the unlabeled examples against ``softmax(logits / T)``
with PET's KL loss (``trainer.distill_temperature``, PET: 2), keeps its last state and is scored
on the task's eval splits. A study runs it in a stage after the pattern runs (``bench.study``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from bench.errors import ConfigError
from bench.superglue.pet import distillation_loss
from bench.superglue.pet_stage import ensemble_from_records, pattern_records
from bench.superglue.runner import prediction_rows
from bench.superglue.task import LAST, ClassificationTask
from bench.train import fit

log = logging.getLogger(__name__)


class DistillTask:
    """Training on the unlabeled examples with soft targets; evaluation as the classification task."""

    def __init__(self, task: ClassificationTask, soft: torch.Tensor, temperature: float) -> None:
        self.task, self.temperature = task, temperature
        self.items = task.items("unlabeled")
        if len(self.items) != soft.shape[0]:
            raise ConfigError(f"{len(self.items)} unlabeled examples but {soft.shape[0]} soft labels (task.limit "
                              "differs from the pattern runs?)")
        self.logits = soft

    def train_batches(self, batch_size: int, generator: torch.Generator):
        order = torch.randperm(len(self.items), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = self.task.collate([self.items[i] for i in chosen])
            batch.teacher = self.logits[chosen].to(self.task.backbone.device)
            yield batch

    def loss(self, scores: torch.Tensor, batch) -> torch.Tensor:
        return distillation_loss(self.task.option_scores(scores, batch).float(), batch.teacher.float(),
                                 self.temperature)

    def evaluate(self, split: str, scorer):
        return self.task.evaluate(split, scorer)


def run_distillation(cfg: Mapping, backbone, method) -> dict:
    if method.output_space != "labels":
        raise ConfigError("PET's distillation trains a sequence classifier: use method=finetune")
    trainer = cfg["trainer"]
    generation = int(trainer.get("ipet_generation") or 0)  # iPET: distil the last generation's ensemble
    records = pattern_records(cfg, generation)
    merged = ensemble_from_records(records, str(trainer.get("distill_reduction") or "wmean"))
    task = ClassificationTask(cfg, backbone, method)
    method.set_num_labels(task.n_out)
    uids = [ex.uid for ex in task.examples("unlabeled")]
    if uids != merged["uids"]:
        raise ConfigError("the pattern runs scored other unlabeled examples than this run loads (task.limit?)")
    temperature = float(trainer.get("distill_temperature") or 2.0)
    dtask = DistillTask(task, merged["logits"].float(), temperature)
    per_epoch = -(-len(dtask.items) // int(trainer.get("batch_size", 16)))
    result = fit(method, dtask, trainer, LAST, seed=task.seed, steps_per_epoch=per_epoch)
    method.eval_mode()
    scorer = method.scorer()
    metrics = {split: task.evaluate(split, scorer)[0] for split in task.eval_splits}
    return {
        "metrics": metrics, "selection_split": None, "report_split": task.report_split,
        "per_example": prediction_rows(task, task.eval_splits),
        "protocol": {"selection_split": None, "report_split": task.report_split, "seeds": [task.seed],
                     "selection_rule": f"{result.selection_rule}; distilled from {len(records)} PET pattern runs"
                                       + (f" of iPET generation {generation}" if generation else "")},
        "extra": {"dataset": task.task, "variant": task.variant, "mode": task.mode,
                  "distillation": {"pattern_runs": [r["name"] for r in records], "n_unlabeled": len(uids),
                                   "ipet_generation": generation,
                                   "reduction": str(trainer.get("distill_reduction") or "wmean"),
                                   "temperature": temperature},
                  "fit": {"steps": result.steps, "epochs": result.epochs, "losses": result.losses}},
    }
