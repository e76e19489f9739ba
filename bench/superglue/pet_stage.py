"""What PET's second stage needs from each pattern run (``trainer.pet_unlabeled_logits: true``).

A pattern run records, under ``extra.pet``: its accuracy on the training set *before* training
(PET's ``train_set_before_training``, the ``wmean`` weight) and its per-label logits on the
unlabeled set (PET's ``logits.txt``) with the examples' ids. :func:`ensemble_from_records` merges
the runs of one task (all patterns x repetitions) into PET's soft labels
(:mod:`bench.superglue.pet`); :func:`pattern_records` reads those records from the run's resolved
inputs (a distillation run, :mod:`bench.superglue.distill`, or iPET's next generation,
:mod:`bench.superglue.ipet`; the runs are chosen by exact name in :mod:`bench.inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from bench.errors import ConfigError, DataError
from bench.prompts.multitoken import iterative_scores
from bench.superglue.data import copa_mirrored
from bench.superglue.metrics import superglue_metrics
from bench.superglue.pet import ensemble_logits, soft_targets


def option_logits(task, split: str, scorer) -> list[list[float]]:
    """Per example of ``split``, one score per label / choice (words: PET's m2c logits)."""
    items, size = task.items(split), int(task.task_cfg.get("batch_size", 32))
    out: list[list[float]] = []
    with torch.no_grad():
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            if task.mode in ("words", "labels"):
                batch = task.collate(chunk)
                out += task.option_scores(scorer(batch), batch).float().tolist()
            elif task.mode == "options":
                entries = [e for it in chunk for e in it.entries]
                flat = iterative_scores(scorer, entries, task.pad_id, task.decoding, task.backbone.device).tolist()
                for it in chunk:
                    out.append(flat[: len(it.entries)])
                    flat = flat[len(it.entries) :]
            else:
                raise ConfigError(f"{task.task}: a generative (answer_field) pattern has no per-label logits for "
                                  "PET's ensemble; use a yes/no pattern")
    return out


def train_accuracy(task, scorer) -> float:
    """Accuracy with the current weights on the training set PET scores (``train_set_before_training``):
    COPA's mirrored 64 examples when the task mirrors them (PET's processor does), else the examples."""
    split = "train"
    if task.task == "COPA" and task.task_cfg.get("mirror_copa", True):
        split = "train_mirrored"  # a view of its own, cached beside the task's splits
        task._examples.setdefault(split, copa_mirrored(task.examples("train")))
    overall = superglue_metrics(task.task, task.examples(split), task.predict(split, scorer))["overall"]
    return float(overall.get("accuracy", overall["score"]))


def unlabeled_record(task, scorer, before: float) -> dict:
    if task.mode == "span":  # PET's generative WSC: no per-label logits to ensemble here
        return {"train_accuracy_before": before, "unlabeled": "not applicable: generative (answer_field) pattern"}
    try:
        examples = task.examples("unlabeled")
    except DataError as err:
        return {"train_accuracy_before": before, "unlabeled": f"unavailable: {err.args[0]}"}
    return {"train_accuracy_before": before, "unlabeled_uids": [ex.uid for ex in examples],
            "unlabeled_logits": option_logits(task, "unlabeled", scorer)}


def ensemble_from_records(records: Sequence[Mapping], reduction: str = "wmean",
                          temperature: float = 2.0) -> dict:
    """PET's merged logits and soft labels from pattern-run records of one task and model."""
    stages = [r["extra"]["pet"] for r in records]
    missing = [r["name"] for r, s in zip(records, stages, strict=True) if "unlabeled_logits" not in s]
    if missing:
        raise ConfigError(f"no unlabeled logits in {missing}: rerun them with trainer.pet_unlabeled_logits=true "
                          "(and an unlabeled file for the task)")
    uids = stages[0]["unlabeled_uids"]
    if any(s["unlabeled_uids"] != uids for s in stages):
        raise ConfigError("pattern runs scored different unlabeled examples (task.limit differs?)")
    merged = ensemble_logits([torch.tensor(s["unlabeled_logits"]) for s in stages],
                             [s["train_accuracy_before"] for s in stages], reduction)
    return {"uids": uids, "logits": merged, "soft_labels": soft_targets(merged, temperature)}


def generation_of(record: Mapping) -> int:
    """The iPET generation a pattern record belongs to (0: PET's first stage)."""
    return int(((record.get("extra") or {}).get("pet") or {}).get("generation") or 0)


def pattern_records(cfg: Mapping, generation: int, accept: Callable[[dict], bool] | None = None) -> list[dict]:
    """The PET pattern records of iPET generation ``generation`` (0: PET's) this run was given: its
    ``inputs`` (every pattern x seed run of ``needs.presets``, resolved by exact name and checksum before
    weights load, :mod:`bench.inputs`); ``accept`` narrows them further. Never a search of the folder."""
    from bench.inputs import load_inputs

    refs = cfg.get("inputs")
    if not refs:
        raise ConfigError(f"no input runs for {cfg['task']['name']} x {cfg['model']['name']}: this run reads PET "
                          "pattern runs resolved by bench.job from needs.presets (run it with python -m bench.run "
                          "experiment=..., whose needs: block names them)")
    found = [r for r in load_inputs(refs, Path(cfg["paths"]["results_dir"])) if accept is None or accept(r)]
    wrong = [r["name"] for r in found if (r.get("spec") or {}).get("method") != "pet" or generation_of(r) != generation
             or "unlabeled_logits" not in (r.get("extra") or {}).get("pet", {})]
    if wrong or not found:
        raise ConfigError(f"input runs {wrong or '(none)'} are not PET pattern runs of generation {generation} with "
                          "unlabeled logits: check needs.presets of this preset")
    return found
