"""LAMA probing run: facts -> vocabulary filter -> rendered prompts -> batched scoring -> P@1."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bench.evaluation.lama import Candidates, build_candidates, predict, render_facts, score_items
from bench.prompts import templates_for
from bench.tasks import lama as lama_data

log = logging.getLogger(__name__)


def relation_templates(template_cfg: Mapping, relations: list[str]) -> tuple[dict, list[str]]:
    """One template per relation (the config's rank); relations the prompt set lacks are listed."""
    chosen, missing = {}, []
    for relation in relations:
        templates = templates_for(template_cfg, relation=relation)
        if templates:
            chosen[relation] = templates[0]
        else:
            missing.append(relation)
    return chosen, missing


def evaluate_split(
    split: str, task_cfg: Mapping, backbone, scorer, candidates: Candidates, templates: Mapping,
) -> tuple[dict, dict]:
    """P@1 on one split over every relation that has facts and a template; plus filter counts."""
    items, counts = [], {}
    for relation, template in templates.items():
        facts = lama_data.load_facts(relation, split, task_cfg["variant"])
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
                                  max_length=task_cfg.get("max_length")))
    if not items:
        return {}, counts
    pad_id = backbone.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = backbone.tokenizer.eos_token_id or 0  # GPT-2 has no pad token; padded slots are masked
    predictions = predict(items, scorer, candidates, pad_id, batch_size=int(task_cfg.get("batch_size", 64)),
                          device=backbone.device, desc=f"LAMA {split}")
    return score_items(items, predictions), counts


def run_lama(cfg: Mapping, backbone, method) -> dict:
    """Evaluate the method's scorer on the configured LAMA splits; returns the record payload part."""
    task_cfg, model_cfg = cfg["task"], cfg["model"]
    relations = lama_data.select_relations(task_cfg.get("relations", "all"))
    vocab = lama_data.load_vocab(task_cfg["variant"], model_cfg["lama_vocab_key"])
    candidates = build_candidates(vocab, backbone.tokenizer, backbone.family)
    templates, missing = relation_templates(cfg["template"], relations)
    if missing:
        log.warning("template set %s has no prompt for %s: those relations are skipped",
                    cfg["template"].get("name"), ", ".join(missing))
    scorer = method.scorer()
    metrics, filters = {}, {}
    for split in task_cfg["eval_splits"]:
        metrics[split], filters[split] = evaluate_split(split, task_cfg, backbone, scorer, candidates, templates)
    return {
        "metrics": metrics,
        "selection_split": task_cfg["selection_split"],
        "report_split": task_cfg["report_split"],
        "extra": {
            "vocabulary": {"variant": task_cfg["variant"], "key": model_cfg["lama_vocab_key"],
                           "n_listed": candidates.n_listed, "n_single_token": len(candidates.word_to_id),
                           "n_unique_ids": int(candidates.ids.numel())},
            "relations_without_template": missing,
            "filter_counts": filters,
            "templates": {rel: str(t) for rel, t in templates.items()},
        },
    }
