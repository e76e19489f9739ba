"""LM-BFF's automatic search as a study stage, and how the automatic rows read its result.

Stage 1 (``task.runner: bench.lmbff.auto_stage.run_auto_search``, presets ``lmbff_auto_<task>_search_*``):
one job per data split finds candidates on the k-shot train set (``auto_search.kind``: ``templates``,
:mod:`bench.lmbff.auto_templates`; ``labels``, :mod:`bench.lmbff.auto_labels`), then re-ranks them as
LM-BFF's README does: prompt-based fine-tuning of each candidate from the pretrained weights with the
fixed batch 8 and lr 1e-5 ("to save time, we fix these hyper-parameters"), dev only (``--no_predict``),
sorted by dev accuracy (``tools/sort_template.py`` / ``sort_mapping.py``: a stable sort, ties keep the
search order). Its record holds every candidate (LM-BFF notation, the suite's template text or label
words, search score, dev accuracy) and the list is also written as data with provenance
(``results/artifacts/lmbff_auto/<record name>.json``).

Stage 2 (:mod:`bench.lmbff.auto_inputs`; presets ``lmbff_auto_<task>_prompt`` / ``_demo``, ``template.auto``): the run reads its split's
search record (``needs.presets``, :mod:`bench.inputs`) and uses the candidate of rank ``template.auto.rank``
(0: LM-BFF's ``--template_id 0`` of the ``.sort.txt``) in place of the preset's template or label words.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import OmegaConf

from bench.errors import ConfigError
from bench.lmbff.auto_inputs import with_candidate
from bench.lmbff.runner import KShotTask
from bench.paths import REPO_ROOT, results_dir

log = logging.getLogger(__name__)
KINDS = ("templates", "labels")
REFERENCE = "princeton-nlp/LM-BFF@c282f52 tools/generate_template.py, tools/generate_labels.py, src/label_search.py"


def settings_of(cfg: Mapping) -> dict[str, Any]:
    """``auto_search`` with its ``small_models`` block applied to the models it names (random weights)."""
    raw = dict(cfg.get("auto_search") or {})
    small = dict(raw.pop("small_models", None) or {})
    prefixes = tuple(small.pop("prefixes", ()) or ())
    if prefixes and str(cfg["model"]["name"]).startswith(prefixes):
        raw.update(small, plumbing_only=True)
    if raw.get("kind") not in KINDS:
        raise ConfigError(f"auto_search.kind must be one of {', '.join(KINDS)}, got {raw.get('kind')!r}")
    return raw


def _model_cfg(name: str) -> dict:
    path = REPO_ROOT / "conf" / "model" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"auto_search.t5_model={name!r}: no {path}; fix: name a model config of conf/model/ "
                          "(LM-BFF used t5-3b)")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


# stage 1: search ---------------------------------------------------------------------------------
def _template_candidates(cfg: Mapping, task, backbone, settings: Mapping) -> list[dict]:
    from bench.backbones.loading import load_backbone
    from bench.lmbff import data as kd
    from bench.lmbff.auto_templates import search_templates, suite_text

    t5 = load_backbone(_model_cfg(str(settings["t5_model"])), device=backbone.device, dtype=torch.float32,
                       models_dir=cfg["paths"]["models_dir"])
    names, fields = kd.LABELS[task.task], kd.FIELDS[task.task]
    examples = [([ex.fields[f] for f in fields], names[ex.label]) for ex in task.examples("train")]
    found = search_templates(t5.model, t5.tokenizer, task.task, examples, int(settings["beam"]))
    del t5
    for cand in found:
        try:
            cand["text"] = suite_text(cand["lmbff"], fields)
        except ConfigError as err:
            cand["text"], cand["unusable"] = None, str(err)
    return found


def _label_candidates(task, backbone, settings: Mapping) -> list[dict]:
    from bench.lmbff import data as kd
    from bench.lmbff.auto_labels import mask_logits, search_mappings

    logits, labels = mask_logits(task, backbone)
    tok = backbone.tokenizer
    tokens = [t or "" for t in tok.convert_ids_to_tokens(list(range(logits.shape[1])))]
    found = search_mappings(logits, labels, tokens, int(settings["k_likely"]), int(settings["n_pairs"]))
    out = []
    for m in found:
        words = {name: tok.decode([i]).strip() for name, i in zip(kd.LABELS[task.task], m.token_ids, strict=True)}
        cand = {"lmbff": dict(zip(kd.LABELS[task.task], m.words, strict=True)), "token_ids": list(m.token_ids),
                "train_accuracy": m.train_accuracy, "label_words": words}
        again = [tok.encode(" " + w, add_special_tokens=False) for w in words.values()]
        if again != [[i] for i in m.token_ids]:  # the verbalizer reads " " + word: it must give the same token
            cand["unusable"] = f"a label word does not re-tokenise to its token ({again})"
        out.append(cand)
    return out


def _dev_after_finetuning(cfg: Mapping, backbone, settings: Mapping, kind: str, cand: Mapping) -> dict:
    """LM-BFF's re-ranking run of one candidate: from the pretrained weights, dev only."""
    from hydra.utils import instantiate

    from bench.backbones.loading import load_backbone
    from bench.superglue.runner import run_classification

    run = with_candidate(cfg, kind, cand)
    run["task"] = {**run["task"], "eval_splits": ["dev"]}  # --no_predict
    fresh = load_backbone(cfg["model"], device=backbone.device, precision=backbone.precision,
                          models_dir=cfg["paths"]["models_dir"])
    method = instantiate(cfg["method"]["component"])
    method.setup(fresh)
    torch.manual_seed(int(cfg["seed"]))
    out = run_classification(run, fresh, method, task_class=KShotTask)
    fit = out["extra"].get("fit") or {}
    return {"dev": out["metrics"]["dev"]["overall"]["accuracy"], "best_step": fit.get("best_step")}


def run_auto_search(cfg: Mapping, backbone, method) -> dict:
    """Stage 1 (a task runner): search, re-rank on dev, write the sorted candidates; the record's dev score is
    the best candidate's."""
    from bench.io_utils import atomic_write_json

    settings = settings_of(cfg)
    kind = settings["kind"]
    method.eval_mode()
    task = KShotTask(cfg, backbone, method)
    if kind == "templates":
        cands = _template_candidates(cfg, task, backbone, settings)
    else:  # the mask logits at generate_labels.py's length (run_generate_labels.sh: --max_seq_len 256)
        length = int(settings.get("max_length") or cfg["task"]["max_length"])
        logits_task = KShotTask({**cfg, "task": {**cfg["task"], "max_length": length}}, backbone, method)
        cands = _label_candidates(logits_task, backbone, settings)
    usable = [c for c in cands if not c.get("unusable")]
    limit = settings.get("rerank")
    chosen = usable if limit is None else usable[: int(limit)]
    for i, cand in enumerate(chosen):
        log.info("re-ranking candidate %d of %d on dev: %s", i + 1, len(chosen), cand.get("text") or cand.get("label_words"))
        cand["rerank"] = _dev_after_finetuning(cfg, backbone, settings, kind, cand)
    ranked = sorted(chosen, key=lambda c: c["rerank"]["dev"], reverse=True)  # stable: ties keep the search order
    for rank, cand in enumerate(ranked):
        cand["rank"] = rank
    dev = ranked[0]["rerank"]["dev"] if ranked else None
    identity = json.dumps({k: v for k, v in cfg.items() if k not in ("paths", "inputs")}, sort_keys=True, default=str)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]  # another config never overwrites this list
    name = f"{cfg['task']['name']}_{kind}_{cfg['model']['name']}_s{cfg['seed']}_{cfg.get('tag') or 'full'}_{digest}"
    artifact = results_dir() / "artifacts" / "lmbff_auto" / f"{name}.json"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    found = {"reference": REFERENCE, "kind": kind, "settings": settings, "model": cfg["model"]["name"],
             "data_split": f"{cfg['task'].get('k', 16)}-{cfg['seed']}", "ranked": ranked,
             "not_reranked": [c for c in usable if c not in chosen], "unusable": [c for c in cands if c.get("unusable")]}
    atomic_write_json(artifact, found)
    log.info("LM-BFF %s search, split %s: %d candidates, %d usable, %d re-ranked -> %s", kind, cfg["seed"],
             len(cands), len(usable), len(chosen), artifact)
    n_dev = len(task.examples("dev"))
    return {"metrics": {"dev": {"overall": {"accuracy": dev, "score": dev, "n": n_dev}}},
            "selection_split": "dev", "report_split": "dev",
            "protocol": {"selection_split": "dev", "report_split": "dev", "seeds": [int(cfg["seed"])],
                         "data_split": found["data_split"],
                         "selection_rule": "candidates sorted by k-shot dev accuracy after prompt-based fine-tuning at "
                                           "batch 8, lr 1e-5 (LM-BFF README); ties keep the search order"},
            "extra": {"auto_search": found, "artifact": str(artifact.relative_to(results_dir()))
                      if artifact.is_relative_to(results_dir()) else str(artifact)}}



run_auto_search.task_class = KShotTask  # what bench.checks.preflight builds to check inputs before weights load
