"""AutoPrompt on LAMA: one trigger search per relation (its train facts, dev for selection), then the
found prompts written as a prompt set and scored on dev through the ordinary LAMA evaluation path.

Facts pass the same vocabulary filter as every LAMA run (``bench.lama``), so the gold objects are
single tokens of the variant's list; relations without train or dev facts are listed as skipped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from bench.errors import ConfigError
from bench.lama import data as lama_data
from bench.lama.evaluation import build_candidates, frozen_scorer
from bench.lama.runner import evaluate_split
from bench.lama.training import split_items
from bench.paths import results_dir
from bench.prompts import prompt_set_path
from bench.prompts.render import render
from bench.prompts.template import parse_template
from bench.provenance import git_state, package_versions
from bench.search.autoprompt import SearchSettings, SearchState, search_relation
from bench.search.hotflip import blocked_tokens
from bench.search.prompt_set import provenance_path, template_with_triggers, write_prompt_set
from bench.search.triggers import TriggerBatch, filled

log = logging.getLogger(__name__)
REFERENCE = "ucinlp/autoprompt@d637675 autoprompt/create_trigger.py (fact retrieval: README and scripts/)"


def set_name(cfg: Mapping, model_name: str) -> str:
    """``name``, or ``autoprompt_search_<model>_<variant>_s<seed>``."""
    return str(cfg.get("name") or f"autoprompt_search_{model_name}_{cfg['variant']}_s{cfg['seed']}")


def settings_of(cfg: Mapping) -> SearchSettings:
    known = SearchSettings.__dataclass_fields__
    return SearchSettings(**{k: type(getattr(SearchSettings, k))(cfg[k]) for k in known if k in cfg})


def state_dir(name: str) -> Path:
    return results_dir() / "artifacts" / "autoprompt_search" / name


def _exact(backbone, template_text: str, item, trigger: list[int], pad_id: int) -> bool:
    """Whether the saved text re-tokenises to the searched ids for one fact."""
    again = render(parse_template(template_text), {"x": item.fact.sub_label}, backbone.tokenizer, backbone.family)
    searched = filled(TriggerBatch.of([item], pad_id, torch.device("cpu")), torch.tensor([trigger]))
    return again.input_ids == searched.input_ids[0].tolist()


def _check_same_set(name: str, fingerprint: dict) -> None:
    """Refuse to overwrite a set of this name that other settings produced."""
    old = provenance_path(name)
    if old.is_file() and json.loads(old.read_text(encoding="utf-8")).get("fingerprint") != fingerprint:
        raise ConfigError(f"{old}: a prompt set of this name was searched with other settings; "
                          "fix: pass another name= (or delete that set and its provenance)")


def search_lama(cfg: Mapping, backbone, progress: bool = True,
                on_iteration: Callable[[int, SearchState, dict], None] | None = None) -> dict:
    """Search every selected relation (resuming finished and interrupted ones), write the prompt set;
    returns its provenance (also written beside the set)."""
    if backbone.family != "mlm":
        raise ConfigError(f"model {backbone.name!r} is a {backbone.family} model: the AutoPrompt search runs on "
                          "masked LMs here (BERT, RoBERTa, ALBERT); GPT-2 triggers are not implemented")
    settings = settings_of(cfg)
    template = parse_template(settings.template, name="search template")
    if not template.num_soft or template.fields != ("x",) or not template.has_target:
        raise ConfigError(f"search template {settings.template!r} needs [X], [Y] and trigger slots [P:n] "
                          "(conf/search/autoprompt_lama.yaml: template)")
    name = set_name(cfg, backbone.name)
    task_cfg = {"variant": cfg["variant"], "train_facts": cfg.get("train_facts", "original"),
                "include_reconstructed": True}
    train_facts = lama_data.train_facts_of(task_cfg)
    limit = cfg.get("limit_per_relation")
    fingerprint = {"model": backbone.name, "revision": backbone.revision, "variant": cfg["variant"],
                   "train_facts": train_facts, "limit_per_relation": limit,
                   **{k: v for k, v in settings.as_dict().items() if k != "iters"}}  # a longer search extends this one
    _check_same_set(name, fingerprint)
    relations = lama_data.select_relations(cfg.get("relations", "all"))
    vocab = lama_data.load_vocab(cfg["variant"], backbone.lama_vocab_key)
    candidates = build_candidates(vocab, backbone.tokenizer, backbone.family)
    model, tokenizer = backbone.model.eval(), backbone.tokenizer  # frozen, dropout off (the reference's load_pretrained)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n_rows = model.get_input_embeddings().weight.size(0)
    base_blocked = blocked_tokens(tokenizer, n_rows, (), filter_words=settings.filter)
    folder = state_dir(name)
    log.info("AutoPrompt search %s: state in %s", name, folder)
    rows, per_relation, skipped = [], {}, {}
    for relation in relations:
        items = {split: split_items(relation, split, template, backbone, candidates, task_cfg, limit)[0]
                 for split in ("train", "dev")}
        lacking = [split for split, got in items.items() if not got]
        if lacking:
            skipped[relation] = f"no {' or '.join(lacking)} facts"
            continue
        blocked = base_blocked.clone()
        if settings.filter:
            blocked[torch.tensor(sorted({it.gold_id for it in items["train"]}))] = True
        started = time.perf_counter()
        state = search_relation(model, tokenizer, relation, items["train"], items["dev"], settings, blocked,
                                folder / f"{relation}.json", fingerprint, backbone.device, on_iteration, progress)
        if tokenizer.mask_token_id in state.best_trigger:
            skipped[relation] = "no trigger without a [MASK] placeholder was accepted"
            continue
        text = template_with_triggers(settings.template, tokenizer, state.best_trigger)
        tokens = tokenizer.convert_ids_to_tokens(state.best_trigger)
        rows.append({"relation": relation, "template": text, "rank": 0, "source": f"searched: bench.search ({name})",
                     "weight": None, "trigger_tokens": tokens, "trigger_ids": state.best_trigger})
        per_relation[relation] = {
            "trigger_tokens": tokens, "accepted": len(state.accepted), "iterations": state.next_iteration,
            "best_dev_loglik": state.best_dev, "initial_dev_loglik": state.initial_dev,
            "n_train": len(items["train"]), "n_dev": len(items["dev"]),
            "exact_retokenization": _exact(backbone, text, items["dev"][0], state.best_trigger, pad_id),
            "seconds_this_session": round(time.perf_counter() - started, 2)}
    dev = {}
    if rows:
        templates = {row["relation"]: parse_template(row["template"], name=f"{name}:{row['relation']}") for row in rows}
        dev, _ = evaluate_split("dev", {**task_cfg, "limit_per_relation": limit}, backbone,
                                frozen_scorer(model), candidates, templates)
        for relation, group in dev["groups"].items():
            per_relation[relation]["dev_p_at_1"] = group["p_at_1"]
    provenance = {
        "name": name, "method": "autoprompt", "reference": REFERENCE,
        "model": {"name": backbone.name, "hub_id": backbone.hub_id, "revision": backbone.revision,
                  "source": backbone.source, "dtype": str(backbone.dtype).removeprefix("torch.")},
        "fingerprint": fingerprint, "settings": settings.as_dict(), "seed": settings.seed,
        "iterations": settings.iters, "variant": cfg["variant"], "train_facts": train_facts,
        "dev_macro_p_at_1": (dev.get("overall") or {}).get("macro_over_relations"),
        "dev_metrics": dev,  # the saved prompts' dev P@1 (overall and per relation), as a LAMA run records it
        "dev_metric_note": "dev_p_at_1: the saved prompt text scored by the ordinary LAMA path (vocabulary-"
                           "restricted argmax); best_dev_loglik: the search's own selection metric",
        "relations": per_relation, "skipped": skipped, "state_dir": str(folder),
        "git": git_state(), "packages": package_versions(),
    }
    old = prompt_set_path(name)
    if old.is_file() and [json.loads(line) for line in old.read_text(encoding="utf-8").splitlines() if line] != rows:
        log.warning("prompt set %s changes (a longer search): records already evaluated with its previous prompts "
                    "are not rerun by themselves; rerun them with force=true", name)
    path = write_prompt_set(name, rows, provenance)
    log.info("prompt set %s: %d relations -> %s (provenance %s)", name, len(rows), path, provenance_path(name))
    return provenance
