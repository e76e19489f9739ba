"""AutoPrompt's trigger search as a study stage, and how the evaluation stage reads what it found.

Stage 1 (``task.runner: bench.search.stage.run_trigger_search``, presets ``<variant>_autoprompt_trigger_search``):
one job per (model, seed) searches every selected relation (:func:`bench.search.lama.search_lama`) with the
preset's ``autoprompt`` settings and its template's trigger slots, writes the prompt set
``autoprompt_search_<model>_<variant>_s<seed>_<config hash>`` (the record's own hash, so another config never
overwrites it) with its provenance, and records the set's name and sha256, the iterations run and the dev P@1
of the saved prompts. ``autoprompt.cpu_schedules`` (model-name prefix -> settings) shortens the search for the
study's tiny and mini models; the record says which schedule ran and the tables mark it.

Stage 2 (``task.runner: bench.search.stage.run_searched_lama``, presets ``<variant>_autoprompt_search``): the
job's input is the stage-1 record of the same model, seed and overrides (``needs.presets``, resolved by exact
name before weights load, :mod:`bench.inputs`); the set it names is checked against the recorded sha256 and then
scored by the ordinary LAMA run (:func:`bench.lama.runner.run_lama`) like a published set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError
from bench.identity import config_hash
from bench.io_utils import sha256_file
from bench.paths import data_dir, results_dir
from bench.prompts import prompt_set_path
from bench.search.autoprompt import SearchSettings
from bench.search.prompt_set import provenance_path

log = logging.getLogger(__name__)
REFERENCE_ITERS = 1000  # create_trigger.py --iters in the reference's fact-retrieval command
SETTING_KEYS = tuple(k for k in SearchSettings.__dataclass_fields__ if k not in ("template", "seed"))


def _search_preset(cfg: Mapping) -> str:
    return f"{cfg['task']['variant']}_autoprompt_trigger_search"


def make_command(cfg: Mapping) -> str:
    """The command that runs the search stage this evaluation reads (seed and model of the job)."""
    return (f"python -m bench.run experiment={_search_preset(cfg)} model={cfg['model']['name']} seed={cfg['seed']}"
            " (with this job's other overrides), or the study: python -m bench.study run lama "
            f"--presets {_search_preset(cfg)},{cfg['task']['variant']}_autoprompt_search --models {cfg['model']['name']}")


def search_settings(cfg: Mapping) -> tuple[dict, dict | None]:
    """The settings :func:`bench.search.lama.search_lama` takes, from the preset's ``autoprompt`` block, its
    template and task; plus the CPU schedule applied (``{prefix, ...settings}``) or None."""
    block = dict(cfg.get("autoprompt") or {})
    schedules = dict(block.pop("cpu_schedules", None) or {})
    model = str(cfg["model"]["name"])
    applied = next(({"prefix": p, **dict(s or {})} for p, s in schedules.items() if model.startswith(p)), None)
    if applied:
        block.update({k: v for k, v in applied.items() if k != "prefix"})
    unknown = sorted(set(block) - set(SETTING_KEYS))
    if unknown:
        raise ConfigError(f"autoprompt.{unknown[0]} is not a search setting; known: {', '.join(SETTING_KEYS)} "
                          "(conf/experiment/lama_autoprompt_trigger_search.grid.yaml)")
    missing = [k for k in SETTING_KEYS if k not in block]
    if missing:
        raise ConfigError(f"the preset's autoprompt block lacks {', '.join(missing)}; every search setting is "
                          "declared there (conf/experiment/lama_autoprompt_trigger_search.grid.yaml)")
    template = cfg["template"]
    if template.get("kind") != "fixed" or not template.get("text"):
        raise ConfigError(f"template {template.get('name')!r}: the search needs one fixed text with trigger slots "
                          "[P:n] between [X] and [Y] (conf/template/autoprompt_search.yaml)")
    task = cfg["task"]
    name = f"autoprompt_search_{model}_{task['variant']}_s{cfg['seed']}_{config_hash(cfg)}"
    settings = {**block, "template": str(template["text"]), "seed": int(cfg["seed"]), "variant": task["variant"],
                "train_facts": task.get("train_facts", "original"), "relations": task.get("relations", "all"),
                "limit_per_relation": task.get("limit_per_relation"), "name": name}
    return settings, applied


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def run_trigger_search(cfg: Mapping, backbone, method) -> dict:
    """Stage 1 (a task runner): search, write the prompt set and its table, record what was found on dev."""
    from bench.search.lama import search_lama
    from bench.search.table import write_table

    settings, applied = search_settings(cfg)
    if applied:
        log.warning("AutoPrompt search on %s: the %s schedule (%s iterations per relation, the reference's %d)",
                    cfg["model"]["name"], applied["prefix"], settings["iters"], REFERENCE_ITERS)
    prov = search_lama(settings, backbone)
    name = prov["name"]
    set_file, prov_file = prompt_set_path(name), provenance_path(name)
    tables = [_relative(p, results_dir()) for p in write_table(name)]  # the found prompts' own table: relation -> trigger tokens
    dev = prov.get("dev_metrics") or {}
    found = {
        "prompt_set": name, "set_file": _relative(set_file, data_dir()), "set_sha256": sha256_file(set_file),
        "provenance_file": _relative(prov_file, data_dir()), "provenance_sha256": sha256_file(prov_file),
        "template": settings["template"], "iterations": prov["iterations"], "reference_iterations": REFERENCE_ITERS,
        "cpu_schedule": applied, "settings": prov["settings"], "limit_per_relation": settings["limit_per_relation"],
        "relations": {rel: info["trigger_tokens"] for rel, info in prov["relations"].items()},
        "skipped": prov["skipped"], "dev_macro_p_at_1": prov["dev_macro_p_at_1"], "tables": tables,
        "reference": prov["reference"],
    }
    log.info("AutoPrompt search %s: %d relations, %d skipped; dev macro P@1 %s; table %s", name,
             len(found["relations"]), len(found["skipped"]), found["dev_macro_p_at_1"], tables[0])
    seed = int(cfg["seed"])
    return {"metrics": {"dev": dev} if dev else {}, "selection_split": "dev", "report_split": "dev",
            "protocol": {"selection_split": "dev", "report_split": "dev", "seeds": [seed],
                         "selection_rule": "per relation, of the accepted triggers the one with the best mean gold "
                                           "log-likelihood on dev (create_trigger.py); test is not scored here"},
            "extra": {"autoprompt_search": found, "train_facts": settings["train_facts"]}}


def searched_set(cfg: Mapping) -> tuple[dict, dict]:
    """The stage-1 record's ``extra.autoprompt_search`` among the job's inputs, its set checked; (found, input ref)."""
    from bench.inputs import load_inputs

    refs = list(cfg.get("inputs") or [])
    if not refs:
        raise ConfigError(f"template {cfg['template'].get('name')!r} reads the prompt set of an AutoPrompt search "
                          f"record, but this job has no input runs (needs.presets=[{_search_preset(cfg)}] is the "
                          f"preset's).\n  fix: {make_command(cfg)}")
    records = load_inputs(refs, Path(cfg["paths"]["results_dir"]))
    found = [(ref, r["extra"]["autoprompt_search"]) for ref, r in zip(refs, records, strict=True)
             if "autoprompt_search" in (r.get("extra") or {})]
    if len(found) != 1:
        raise ConfigError(f"expected one AutoPrompt search record among this job's inputs, found {len(found)} "
                          f"({', '.join(ref['name'] for ref in refs)})")
    ref, search = found[0]
    if search["template"] != cfg["template"].get("text"):
        raise ConfigError(f"the search filled template {search['template']!r}, this job's template.text is "
                          f"{cfg['template'].get('text')!r}; fix: give both stages the same template.text")
    path = prompt_set_path(search["prompt_set"])
    if not path.is_file():
        raise DataError(f"prompt set {search['prompt_set']!r} named by the search record {ref['path']} is missing",
                        file=path, fix=f"rerun the search with force=true: {make_command(cfg)}")
    if sha256_file(path) != search["set_sha256"]:
        raise DataError(f"prompt set {search['prompt_set']!r} changed since the search record {ref['path']} was "
                        f"written (sha256 {search['set_sha256'][:12]}...)", file=path,
                        fix=f"rerun the search with force=true: {make_command(cfg)}")
    return search, ref


def run_searched_lama(cfg: Mapping, backbone, method) -> dict:
    """Stage 2 (a task runner): the search record's prompt set, scored as ``template=autoprompt_bert`` is."""
    from bench.lama.runner import run_lama

    search, ref = searched_set(cfg)
    template = {"name": cfg["template"]["name"], "kind": "prompt_set", "prompt_set": search["prompt_set"], "rank": 0}
    payload = run_lama({**cfg, "template": template}, backbone, method)
    keep: dict[str, Any] = {k: search[k] for k in ("prompt_set", "set_sha256", "iterations", "reference_iterations",
                                                   "cpu_schedule", "limit_per_relation", "settings", "skipped",
                                                   "dev_macro_p_at_1")}
    payload["extra"]["autoprompt_search"] = {**keep, "search_record": ref["path"], "relations": search["relations"]}
    return payload
