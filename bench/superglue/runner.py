"""SuperGLUE / FewGLUE classification runs: examples -> method inputs -> (training) -> metrics.

The task (:mod:`bench.superglue.task`) turns examples into the method's inputs and scores them;
this module trains with selection on the selection split, scores every eval split and writes
what the record needs: the protocol, PET's second-stage inputs (:mod:`bench.superglue.pet_stage`)
and, for iPET's later generations, the examples the previous generation labelled
(:mod:`bench.superglue.ipet`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.errors import ConfigError
from bench.identity import family_hash, resolved_config
from bench.paths import uses_run_paths
from bench.precision import autocast_for
from bench.superglue import pet_stage
from bench.superglue.aux_mlm import UnlabeledLM
from bench.superglue.ipet import ipet_train_set
from bench.superglue.task import LAST, ClassificationTask
from bench.train import FitResult, fit

log = logging.getLogger(__name__)
IPET_KEYS = ("trainer.ipet_generation",)  # what differs between a run and its previous generation


def _add_ipet_examples(cfg: Mapping, task: ClassificationTask, generation: int) -> dict:
    """Generation ``generation``'s extra training examples, labelled by the previous generation's runs
    (the run's inputs: every pattern and seed of the previous generation's preset, same config otherwise,
    chosen by exact name in :mod:`bench.inputs`)."""
    resolved = resolved_config(cfg)
    family = family_hash(resolved, drop=IPET_KEYS)
    previous = pet_stage.pattern_records(resolved, generation - 1)
    strangers = [r["name"] for r in previous if family_hash(r.get("config") or {}, drop=IPET_KEYS) != family]
    if strangers:  # needs.presets named a preset of another recipe
        raise ConfigError(f"iPET generation {generation}: input runs {strangers} differ from this run in more than "
                          f"the generation, seed and pattern; fix needs.presets")
    own = (int(resolved["template"].get("rank") or 0), task.seed)
    task.extra_train, info = ipet_train_set(previous, own, generation, task.examples("train"),
                                            task.examples("unlabeled"), cfg["trainer"])
    log.info("iPET generation %d: %d examples labelled by %d runs of generation %d", generation, info["n_new"],
             len(info["labelled_by"]), generation - 1)
    return info


def prediction_rows(task: ClassificationTask, splits) -> list[dict] | None:
    """bench.predictions rows of the last scoring of each split: example id, gold and predicted index, scores
    (None when the task kept no scores: then the record has no predictions file)."""
    from bench.predictions import row

    scored = getattr(task, "scored", {})
    if any(split not in scored for split in splits):
        log.warning("no per-example scores kept for %s: the record gets no predictions file", task.task)
        return None
    out = []
    for split in splits:
        preds, scores = scored[split]
        out += [row(ex.uid, split, ex.label, p, s)
                for ex, p, s in zip(task.examples(split), preds, scores, strict=True)]
    return out


@dataclass
class PreparedRun:
    """A classification run set up up to its training (``bench.superglue.joint_runner`` trains several together)."""

    task: ClassificationTask
    selection: str | None
    report: str
    eval_splits: list[str]
    on_report: bool
    n_train: int = 0
    per_epoch: int = 0
    pet_before: Any = None
    ipet_info: dict | None = None


@uses_run_paths
def prepare_classification(cfg: Mapping, backbone, method, task_class: type = ClassificationTask) -> PreparedRun:
    """Everything a run does before ``fit``: the task, its splits, the method's label count, iPET's and PET's inputs."""
    task = task_class(cfg, backbone, method)
    selection, report, eval_splits = task.selection_split, task.report_split, task.eval_splits
    on_report = selection is not None and selection == report
    if on_report and not cfg["task"].get("allow_val_selection"):
        raise ConfigError(f"selection split and report split are both {report!r}: the report would be chosen on "
                          "itself; P-Tuning v2's and prompt-tuning's released code do this: set task.allow_val_selection=true to "
                          "reproduce it (its records and table cells are marked)")
    if method.output_space == "labels":
        method.set_num_labels(task.n_out)
    prepared = PreparedRun(task, selection, report, eval_splits, on_report)
    if method.trains:
        trainer_cfg = cfg["trainer"]
        generation = int(trainer_cfg.get("ipet_generation") or 0)
        if generation:  # iPET: add the examples the previous generation labelled (bench.superglue.ipet)
            prepared.ipet_info = _add_ipet_examples(cfg, task, generation)
        prepared.n_train = len(task.items("train", train=True))
        prepared.per_epoch = -(-prepared.n_train // int(trainer_cfg.get("batch_size", 8)))
        if task.aux_weight and task.family == "mlm":
            task.aux = UnlabeledLM(task, int(trainer_cfg.get("unlabeled_batch_size") or 32), task.seed)
        if trainer_cfg.get("pet_unlabeled_logits"):  # PET's second stage inputs (bench.superglue.pet_stage)
            method.eval_mode()
            prepared.pet_before = pet_stage.train_accuracy(task, method.scorer())
    return prepared


@uses_run_paths
def run_classification(cfg: Mapping, backbone, method, task_class: type = ClassificationTask) -> dict:
    """Train (when the method trains) with selection on the selection split; score every eval split."""
    prepared = prepare_classification(cfg, backbone, method, task_class)
    result = None
    if method.trains:
        result = fit(method, prepared.task, cfg["trainer"], prepared.selection or LAST, seed=prepared.task.seed,
                     steps_per_epoch=prepared.per_epoch)
    return finish_classification(cfg, backbone, method, prepared, result)


@uses_run_paths
def finish_classification(cfg: Mapping, backbone, method, prepared: PreparedRun, result: FitResult | None) -> dict:
    """After training (``result``: None when the method does not train): score every eval split; the runner's part
    of the record."""
    task, selection, report, eval_splits = prepared.task, prepared.selection, prepared.report, prepared.eval_splits
    on_report, pet_before, ipet_info = prepared.on_report, prepared.pet_before, prepared.ipet_info
    fit_info = None
    if result is not None:
        fit_info = {"n_train": prepared.n_train, "best_step": result.best_step, "best_epoch": result.best_epoch,
                    "best_value": result.best_value if selection else None, "steps": result.steps,
                    "epochs": result.epochs, "losses": result.losses, "selection_rule": result.selection_rule,
                    "aux_mlm": task.aux.status if task.aux is not None else "off",
                    "history": result.history if selection else []}
    method.eval_mode()
    scorer = method.scorer()
    with autocast_for(backbone):
        metrics = {split: task.evaluate(split, scorer)[0] for split in eval_splits}
    pet_extra = pet_stage.unlabeled_record(task, scorer, pet_before) if fit_info and pet_before is not None else None
    if pet_extra is not None and ipet_info is not None:
        pet_extra.update(generation=ipet_info["generation"], ipet=ipet_info)
    log.info("%s %s: %s", task.task, report, metrics.get(report, {}).get("overall"))
    demonstrations = None
    if method.uses_demonstrations:
        from bench.methods.icl import demonstration_summary

        demonstrations = demonstration_summary(method.k, task.max_length, task.demonstrations_used,
                                               {split: [ex.uid for ex in task.examples(split)] for split in eval_splits})
    return {
        "metrics": metrics,
        "selection_split": selection,
        "report_split": report,
        "per_example": prediction_rows(task, eval_splits),
        # the selected prompt, kept beside the record for prompt ensembles (bench.methods.prompt_store)
        "prompt_vectors": method.saved_prompt() if fit_info and hasattr(method, "saved_prompt") else None,
        "protocol": {"selection_split": selection, "report_split": report, "seeds": [task.seed],
                     "selection_rule": (f"best state on {report}, the split it reports (task.allow_val_selection: "
                                        f"{cfg['task'].get('val_selection_by') or 'no source named in task.val_selection_by'}; optimistic)")
                     if on_report else
                     (fit_info["selection_rule"] if fit_info else "no training")},
        "extra": {
            "dataset": task.task, "variant": task.variant, "mode": task.mode, "decoding": task.decoding,
            "multi_token": task.multi_token,
            "template": None if task.template is None else task.template.text,
            "verbalizer": None if task.verbalizer is None else {k: list(v) for k, v in task.verbalizer.label_words.items()},
            "n_examples": {split: len(task.examples(split)) for split in eval_splits}, "max_length": task.max_length,
            "fit": fit_info,
            **({"pet": pet_extra} if pet_extra is not None else {}),
            "demonstrations": demonstrations,
            "selected_on_report": on_report,
        },
    }
