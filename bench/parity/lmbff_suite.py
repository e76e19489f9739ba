"""The suite's side of the LM-BFF parity study: the same inputs built by the suite's own LM-BFF runner.

Every function goes through ``bench.lmbff.runner.KShotTask`` (the class a run uses) on a tokenizer
only (no weights) except :func:`model_outputs`, which loads the tiny backbone in fp32. Keys are
``<split>/<seed>:<row>`` (train, dev) and ``<split>/<row>`` (test), as in the golden files.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from omegaconf import OmegaConf

from bench.paths import REPO_ROOT

MODEL = "tiny-roberta"
TASK_CONF = {"SST-2": "sst2", "SNLI": "snli"}
TEMPLATE_CONF = {"SST-2": "lmbff_sst2", "SNLI": "lmbff_snli"}


@cache
def tokenizer(name: str = MODEL, positions: int | None = None):
    """The tiny model's tokenizer as the suite loads it (built deterministically on first use);
    ``positions`` overrides its length limit (RoBERTa-large's 512 where the tiny model has 256)."""
    from transformers import AutoTokenizer

    extra = {"model_max_length": positions} if positions else {}
    return AutoTokenizer.from_pretrained(str(snapshot_dir(name)), **extra)


def snapshot_dir(name: str = MODEL) -> Path:
    from bench.backbones.loading import load_model_config
    from bench.models.tiny import ensure_built, repo_folder
    from bench.paths import models_dir

    cfg = load_model_config(name)
    return repo_folder(cfg["hub_id"], models_dir() / "hub") / "snapshots" / ensure_built(cfg)


def _yaml(kind: str, name: str) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf" / kind / f"{name}.yaml"))


def make_task(task: str, method, *, seed: int = 13, rank: int | None = 0, test_file: str | None = None,
              backbone=None):
    """A ``KShotTask`` for ``task`` (SST-2 / SNLI) and ``method``; a tokenizer-only backbone by default."""
    from bench.lmbff.runner import KShotTask

    template = _yaml("template", TEMPLATE_CONF[task]) if rank is not None else {}
    if rank is not None:
        template["rank"] = rank
    task_cfg = _yaml("task", TASK_CONF[task]) | {"limit": None, "test_file": test_file}
    cfg = {"task": task_cfg, "template": template, "seed": seed, "paths": {}}
    backbone = backbone or SimpleNamespace(family="mlm", tokenizer=tokenizer(), device=torch.device("cpu"))
    return KShotTask(cfg, backbone, method)


def key_of(split: str, ex, seed: int) -> str:
    row = ex.meta["row"]
    return f"{split}/{row}" if split.startswith("test") else f"{split}/{seed}:{row}"


def prompt_inputs(task: str, rank: int | None, selection: Mapping[str, Mapping[str, list[int]]],
                  test_files: Mapping[str, str | None]) -> tuple[dict[str, dict], list[int] | None]:
    """Inputs (ids, mask position) of every selected example; rank None = the fine-tuning input."""
    from bench.methods.finetune import FineTune
    from bench.methods.pet import PatternTuning

    out: dict[str, dict] = {}
    words = None
    for seed_text, splits in selection.items():
        seed = int(seed_text)
        for split, rows in splits.items():
            kt = make_task(task, FineTune() if rank is None else PatternTuning(), seed=seed, rank=rank,
                           test_file=test_files.get(split))
            base = "test" if split.startswith("test") else split
            wanted = set(rows)
            for ex in kt.examples(base):
                if ex.meta["row"] not in wanted:
                    continue
                item = kt._item(ex, train=base == "train")
                if rank is None:
                    out[key_of(split, ex, seed)] = {"input_ids": list(item.sequences[0])}
                else:
                    r = item.rendered
                    out[key_of(split, ex, seed)] = {"input_ids": list(r.input_ids), "mask_pos": list(r.target_positions)}
            if rank is not None:
                words = [int(x) for x in kt.word_table()[:, 0].tolist()]
    return out, words


def demo_inputs(task: str, kind: str, queries: Mapping[str, list[dict]], seed: int,
                test_files: Mapping[str, str | None], context: int = 32) -> dict[str, dict]:
    """Inputs with the given demonstrations (train row ids, in input order): ``demo`` or ``icl``."""
    from bench.lmbff.method import PromptDemoTuning
    from bench.methods.icl import InContext

    out = {}
    for split, items in queries.items():
        method = InContext(k=context) if kind == "icl" else PromptDemoTuning(num_sample=1, filter_rate=None)
        # ICL: 512 tokens as for RoBERTa-large (the tiny model's 256 positions would cap the suite's budget)
        tok = tokenizer(MODEL, 512 if kind == "icl" else None)
        backbone = SimpleNamespace(family="mlm", tokenizer=tok, device=torch.device("cpu"))
        kt = make_task(task, method, seed=seed, rank=0, test_file=test_files.get(split), backbone=backbone)
        base = "test" if split.startswith("test") else split
        pool = kt.examples("train")
        by_row = {ex.meta["row"]: ex for ex in kt.examples(base)}
        for query in items:
            rendered = kt.render_with(by_row[query["row"]], [pool[i] for i in query["demos"]])
            out[f"{split}/{query['id']}"] = {"input_ids": list(rendered.input_ids),
                                             "mask_pos": list(rendered.target_positions)}
    return out


def filter_candidates(task: str, embeddings: Mapping[str, list[list[float]]], queries: list[str], seed: int,
                      rate: float) -> dict[str, list[int]]:
    """The demonstration candidates of each query (train, dev) on the given fixed embeddings."""
    from bench.lmbff.method import PromptDemoTuning

    kt = make_task(task, PromptDemoTuning(num_sample=1, filter_rate=rate), seed=seed, rank=0)
    kt._embeddings = {split: {i: torch.tensor(v, dtype=torch.float32) for i, v in enumerate(rows)}
                      for split, rows in embeddings.items()}  # fixed embeddings instead of Sentence-BERT ones
    out = {}
    for split in queries:
        for ex in kt.examples(split):
            kt.demonstrations(ex, 0)
            out[f"{split}/{ex.meta['row']}"] = list(kt._candidates[ex.uid])
    return out


def model_outputs(task: str, queries: list[dict], seed: int, sgd_lr: float | None = None) -> dict[str, Any]:
    """Loss and label-word logits of LM-BFF's prompt-based fine-tuning with demonstrations (``lmbff_demo``,
    ``LMBFFPatternTuning`` underneath) on fixed dev queries with fixed demonstrations (fp32, eval mode); with
    ``sgd_lr``, also after one plain SGD step on the batch (``after_step``) and the same step with the suite's
    tied LM head (``after_step_tied``). The demonstrations put label words into the input, so a tied head
    moves their input embeddings too."""
    from bench.backbones.loading import load_backbone, load_model_config
    from bench.lmbff.method import PromptDemoTuning
    from bench.superglue.batching import Item

    out: dict[str, Any] = {}
    for untie in (True, False) if sgd_lr else (True,):
        backbone = load_backbone(load_model_config(MODEL), device="cpu", dtype="fp32")
        method = PromptDemoTuning(num_sample=1, filter_rate=None, untie_lm_head=untie)
        method.setup(backbone)
        kt = make_task(task, method, seed=seed, rank=0, backbone=backbone)
        by_row, pool = {ex.meta["row"]: ex for ex in kt.examples("dev")}, kt.examples("train")
        batch = kt.collate([Item(by_row[q["row"]], rendered=kt.render_with(by_row[q["row"]], [pool[i] for i in q["demos"]]))
                            for q in queries])
        scorer = method.scorer()
        if untie:
            with torch.no_grad():
                scores = scorer(batch)
                out.update(loss=float(kt.loss(scores, batch)), logits=kt.option_scores(scores, batch).double().tolist(),
                           labels=batch.labels.tolist())
        if sgd_lr:
            params = method.trainable_parameters()
            kt.loss(scorer(batch), batch).backward()
            with torch.no_grad():
                for param in params:
                    if param.grad is not None:
                        param -= sgd_lr * param.grad
                scores = scorer(batch)
                out["after_step" if untie else "after_step_tied"] = {
                    "loss": float(kt.loss(scores, batch)), "logits": kt.option_scores(scores, batch).double().tolist()}
    return out
