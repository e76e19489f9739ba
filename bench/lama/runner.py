"""LAMA probing run: facts -> vocabulary filter -> rendered prompts -> batched scoring -> P@1.

Zero-shot methods score every relation in one pass. Training methods (``method.trains``) are
fitted per relation (P-Tuning's LAMA protocol): a fresh ``method.setup`` on the same backbone,
training on the relation's train facts with dev as the selection split, dev/test scored with the
selected state, and the method's small state saved to
``<results>/artifacts/<record name>/<relation>.pt``.

``task.train_facts`` picks the train/dev facts (``original``, as THUDM/P-tuning; ``original_rob``,
AutoPrompt's); ``task.protocol=reference`` renders, trains and loops as THUDM/P-tuning does
(``bench.lama.reference``, docs/lama-protocol.md). Both go into the record's ``extra``.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import torch

from bench.lama import data as lama_data
from bench.lama.evaluation import Candidates, build_candidates, predict, render_facts, score_items
from bench.lama.reference import REFERENCE_LOOP, TRAIN_TARGET_SHIFT
from bench.paths import uses_run_paths
from bench.precision import autocast_for
from bench.prompts import templates_for

log = logging.getLogger(__name__)


def relation_templates(template_cfg: Mapping, relations: list[str], family: str | None = None) -> tuple[dict, list[str]]:
    """One template per relation (the config's rank); relations the prompt set lacks are listed."""
    chosen, missing = {}, []
    for relation in relations:
        templates = templates_for(template_cfg, relation=relation, family=family)
        if templates:
            chosen[relation] = templates[0]
        else:
            missing.append(relation)
    return chosen, missing


def evaluate_split(
    split: str, task_cfg: Mapping, backbone, scorer, candidates: Candidates, templates: Mapping,
    predict_items=None, rows: list | None = None,
) -> tuple[dict, dict]:
    """P@1 on one split over every relation that has facts and a template; plus filter counts.

    `predict_items` (items -> token ids) replaces model scoring for baselines that need no forward pass;
    `rows` (a list) receives one per-example prediction row per fact (bench.predictions).
    """
    items, counts = [], {}
    for relation, template in templates.items():
        facts = lama_data.load_facts(relation, split, task_cfg["variant"],
                                     train_facts=lama_data.train_facts_of(task_cfg))
        if facts is None:
            counts[relation] = {"file": "missing"}
            continue
        kept, dropped = lama_data.filter_facts(
            facts, set(candidates.word_to_id), include_reconstructed=task_cfg.get("include_reconstructed", True))
        counts[relation] = {"n_file": len(facts), "n_kept": len(kept), "n_dropped_vocab": len(dropped)}
        limit = task_cfg.get("limit_per_relation")
        if limit:
            kept = kept[: int(limit)]
        items.extend(render_facts(kept, template, backbone.tokenizer, backbone.family, candidates,
                                  max_length=task_cfg.get("max_length"), protocol=lama_data.protocol_of(task_cfg)))
    if not items:
        return {}, counts
    pad_id = backbone.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = backbone.tokenizer.eos_token_id or 0  # GPT-2 has no pad token; padded slots are masked
    if predict_items is not None:
        predictions = predict_items(items)
    else:
        with autocast_for(backbone):
            predictions = predict(items, scorer, candidates, pad_id, batch_size=int(task_cfg.get("batch_size", 64)),
                                  device=backbone.device, desc=f"LAMA {split}",
                                  token_budget=task_cfg.get("token_budget"))
    metrics = score_items(items, predictions)
    if rows is not None:
        rows += prediction_rows(split, items, predictions, candidates)
    if task_cfg.get("save_predictions"):
        metrics["predictions"] = prediction_table(items, predictions, backbone.tokenizer)
    return metrics, counts


def prediction_rows(split: str, items, predictions, candidates: Candidates) -> list[dict]:
    """bench.predictions rows: gold and predicted object words (the gold word when the ids match, as P@1
    counts); no per-candidate scores (the candidates are a vocabulary of thousands of words)."""
    from bench.predictions import row

    words: dict[int, str] = {}
    for word, token in candidates.word_to_id.items():
        words.setdefault(token, word)
    return [row(f"{it.fact.relation}:{it.fact.uuid or it.fact.sub_label}", split, it.fact.obj_label,
                it.fact.obj_label if pred == it.gold_id else words.get(pred, str(pred)), None)
            for it, pred in zip(items, predictions, strict=True)]


def prediction_table(items, predictions, tokenizer) -> dict[str, list[list[str]]]:
    """Per relation, in scoring order: [subject, gold object, predicted token] for every fact."""
    table: dict[str, list[list[str]]] = {}
    for item, pred in zip(items, predictions, strict=True):
        token = tokenizer.convert_ids_to_tokens(pred)
        table.setdefault(item.fact.relation, []).append([item.fact.sub_label, item.fact.obj_label, token])
    return table


@uses_run_paths
def run_lama(cfg: Mapping, backbone, method) -> dict:
    """Evaluate the method's scorer on the configured LAMA splits; returns the record payload part."""
    task_cfg, model_cfg = cfg["task"], cfg["model"]
    protocol_extra = {"train_facts": lama_data.train_facts_of(task_cfg), "protocol": lama_data.protocol_of(task_cfg)}
    relations = lama_data.select_relations(task_cfg.get("relations", "all"))
    vocab = lama_data.load_vocab(task_cfg["variant"], model_cfg["lama_vocab_key"])
    candidates = build_candidates(vocab, backbone.tokenizer, backbone.family)
    trains = method.trains
    templates, missing = relation_templates(cfg["template"], relations, backbone.family if trains else None)
    if missing:
        log.warning("template set %s has no prompt for %s: those relations are skipped",
                    cfg["template"].get("name"), ", ".join(missing))
    rows: list[dict] = []  # per-example predictions (bench.predictions), written beside the record
    if trains:
        metrics, extra = train_relations(cfg, backbone, method, candidates, templates, rows)
        return {"metrics": metrics, "selection_split": task_cfg["selection_split"],
                "report_split": task_cfg["report_split"], "per_example": rows,
                "extra": {**protocol_extra, "vocabulary": _vocabulary_extra(task_cfg, model_cfg, candidates),
                          "relations_without_template": missing, **extra}}
    baseline = not method.needs_model
    predict_items = (method.lama_predictions(task_cfg["variant"], candidates.word_to_id,
                                             train_facts=protocol_extra["train_facts"]) if baseline else None)
    scorer = None if baseline else method.scorer()
    metrics, filters = {}, {}
    for split in task_cfg["eval_splits"]:
        metrics[split], filters[split] = evaluate_split(split, task_cfg, backbone, scorer, candidates, templates,
                                                        predict_items, rows)
    return {
        "metrics": metrics,
        "selection_split": task_cfg["selection_split"],
        "report_split": task_cfg["report_split"],
        "per_example": rows,
        "extra": {
            **protocol_extra,
            "vocabulary": _vocabulary_extra(task_cfg, model_cfg, candidates),
            "relations_without_template": missing,
            "filter_counts": filters,
            "templates": {rel: str(t) for rel, t in templates.items()},
        },
    }


def _vocabulary_extra(task_cfg: Mapping, model_cfg: Mapping, candidates: Candidates) -> dict:
    return {"variant": task_cfg["variant"], "key": model_cfg["lama_vocab_key"], "n_listed": candidates.n_listed,
            "n_single_token": len(candidates.word_to_id), "n_unique_ids": int(candidates.ids.numel())}


def _record_name(cfg: Mapping) -> str:
    from bench.identity import spec_from_config

    return spec_from_config(cfg).name


def train_relations(cfg: Mapping, backbone, method, candidates: Candidates, templates: Mapping,
                    rows: list | None = None) -> tuple[dict, dict]:
    """Fit ``method`` per relation (fresh setup, same backbone); metrics per split and the record's extra
    (``rows`` receives the per-example predictions)."""
    from bench.joint import Member, fit_jointly, joint_extra, joint_mode, why_not_joinable
    from bench.lama.training import LamaRelationTask, pad_id_of, split_items
    from bench.train import fit

    task_cfg, trainer_cfg, seed = cfg["task"], reference_trainer(cfg["task"], cfg["trainer"]), int(cfg["seed"])
    reference = lama_data.protocol_of(task_cfg) == "reference"
    selection, eval_splits = task_cfg["selection_split"], list(task_cfg["eval_splits"])
    results = Path(cfg["paths"]["results_dir"])
    artifacts = results / "artifacts" / _record_name(cfg)
    limit = task_cfg.get("limit_per_relation")
    train_limit = task_cfg.get("train_limit_per_relation", limit)
    # a tuned backbone starts every relation from the same weights (THUDM/P-tuning: one process per relation)
    initial = ({k: v.detach().clone() for k, v in backbone.model.state_dict().items()}
               if method.tunes_backbone else None)
    scored: dict[str, tuple[list, list]] = {split: ([], []) for split in eval_splits}
    training, skipped, filters, used = {}, {}, {}, {}
    joint = joint_mode(trainer_cfg) == "auto" and initial is None  # bench.joint: frozen prompts train together
    given = method  # the caller's method (counted and reported after the run)
    members: list[tuple[str, Member, dict]] = []

    def finish(relation: str, member: Member, items: dict) -> None:
        """Score the relation's eval splits with its selected state; save it; its record entry."""
        result, task = member.result, member.task
        member.method.eval_mode()
        scorer = member.method.scorer()
        for split in eval_splits:
            if split in items:
                scored[split][0].extend(items[split])
                with autocast_for(backbone):
                    scored[split][1].extend(task.predictions(split, scorer))
        path = member.method.save_trainable(artifacts / f"{relation}.pt")
        training[relation] = {"best_epoch": result.best_epoch, "best_step": result.best_step, "steps": result.steps,
                              "epochs": result.epochs, "best_selection_p_at_1": result.best_value,
                              "n_train": len(items["train"]), "train_loss_per_epoch": result.losses,
                              "artifact": str(path.relative_to(results))}

    for relation, base in templates.items():
        if initial is not None:
            backbone.model.load_state_dict(initial)
        torch.manual_seed(seed)
        if joint:  # each relation its own prompt encoder on the shared frozen backbone
            method = copy.copy(given)
        method.setup(backbone)
        if joint and why_not_joinable([method]):
            log.info("relations train one after another: %s", why_not_joinable([method]))
            joint = False
        template = method.adapt_template(base)
        items = {}
        for split in dict.fromkeys(["train", selection, *eval_splits]):
            got, counts = split_items(relation, split, template, backbone, candidates, task_cfg,
                                      train_limit if split == "train" else limit)
            filters.setdefault(split, {})[relation] = counts
            if got:
                items[split] = got
        lacking = [s for s in ("train", selection) if s not in items]
        if lacking:
            skipped[relation] = f"no {' or '.join(lacking)} facts"
            log.warning("relation %s skipped: %s", relation, skipped[relation])
            continue
        task = LamaRelationTask(relation, items, candidates, pad_id_of(backbone.tokenizer), backbone.device,
                                eval_batch_size=int(task_cfg.get("batch_size", 64)),
                                train_shift=TRAIN_TARGET_SHIFT.get(backbone.family, 0) if reference else 0)
        rounding = math.floor if trainer_cfg.get("drop_last") else math.ceil
        steps_per_epoch = rounding(len(items["train"]) / int(trainer_cfg.get("batch_size", 8)))
        member = Member(method, task, trainer_cfg, selection, seed, steps_per_epoch, torch.get_rng_state(), relation)
        used[relation] = str(template)
        if joint:
            members.append((relation, member, items))
            continue
        member.result = fit(method, task, trainer_cfg, selection, seed=seed, steps_per_epoch=steps_per_epoch)
        finish(relation, member, items)
    group = trainer_cfg.get("joint_group_size")
    if members:
        log.info("training %d relations jointly (bench.joint)", len(members))
        fit_jointly([m for _, m, _ in members], group_size=group)
        for relation, member, items in members:
            finish(relation, member, items)
    if method is not given:  # copies trained (jointly, or alone after a fallback): the last relation's state
        vars(given).update(vars(method))
    metrics = {split: score_items(its, preds) if its else {} for split, (its, preds) in scored.items()}
    for split, (its, preds) in scored.items():
        if rows is not None:
            rows += prediction_rows(split, its, preds, candidates)
    loop = {key: bool(trainer_cfg.get(key, False)) for key in REFERENCE_LOOP}
    extra = {"training": training, "relations_skipped": skipped, "filter_counts": filters, "templates": used,
             "loop": loop}
    if members:  # the records of relations trained together say so (metrics equal separate runs: bench.joint)
        extra["joint"] = joint_extra(len(members), group)
    return metrics, extra


def reference_trainer(task_cfg: Mapping, trainer_cfg: Mapping) -> Mapping:
    """The trainer config with THUDM/P-tuning's loop settings when ``task.protocol=reference``."""
    if lama_data.protocol_of(task_cfg) != "reference":
        return trainer_cfg
    return {**dict(trainer_cfg), **REFERENCE_LOOP}
