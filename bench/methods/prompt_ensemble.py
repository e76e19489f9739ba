"""Prompt ensembles (Lester et al. 2021, section 6 and Table 3): K prompts on ONE frozen model, one batched pass.

``task.runner: bench.methods.prompt_ensemble.run_prompt_ensemble`` with ``method=prompt_tuning`` and
``method.component.num_prompts: K``. The job's inputs (``needs:``: every seed run of one Prompt Tuning
preset, resolved by exact name and checksum before weights load, :mod:`bench.inputs`) each saved their
selected prompt beside the record (:mod:`bench.methods.prompt_store`); they are loaded side by side into
the method's K prompt blocks, in seed order. Every chunk of evaluation examples is scored once per
prompt in a single forward pass: the chunk's rows repeated K times, copy k reading prompt k
(``prompt_index``, :func:`bench.backbones.scoring.pad_batch`), as Lester et al. describe it ("a single
forward pass with a batch size of N, replicating the example across the batch and varying the prompt").

Predictions are combined by simple majority vote (the paper's words; google-research/prompt-tuning ships
no ensembling code to follow). Ties, which only occur with 3+ labels or an even K: the tied label that
the earliest prompt in seed order predicted (what Python's ``statistics.mode`` returns for that order).

The record reports, per evaluated split: ``overall`` = the ensemble; ``subsets``: ``average`` (each
metric averaged over the K prompts), ``best`` (the prompt with the highest score on that same split, as
Lester's Table 3 "Best" is chosen on the evaluation set itself: optimistic), ``best_selected`` (the
prompt with the highest score on the selection split, reported on this split) and ``prompt_<k>``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from bench.backbones.scoring import pad_batch
from bench.errors import ConfigError
from bench.identity import family_hash, resolved_config
from bench.methods.prompt_store import read_prompt
from bench.superglue.batching import unit_log_probs

log = logging.getLogger(__name__)
MODES = ("text2text", "options")  # entries scored teacher-forced in one pass (seq2seq / causal / parallel)
# what may differ between the ensemble job and the runs it reads, besides seed and rank
FAMILY_DROP = ("method.component.num_prompts", "task.runner")
TIE_RULE = "majority vote; a tie goes to the tied label the earliest prompt (seed order) predicted"


def majority_vote(predictions: Sequence[Sequence[int]]) -> tuple[list[int], int]:
    """``predictions[k][i]``: prompt k's label for example i -> (voted label per example, number of ties)."""
    if not predictions:
        raise ConfigError("a majority vote needs at least one prompt's predictions")
    n = len(predictions[0])
    if any(len(p) != n for p in predictions):
        raise ConfigError(f"prompts predicted different numbers of examples: {[len(p) for p in predictions]}")
    voted, ties = [], 0
    for i in range(n):
        column = [int(p[i]) for p in predictions]
        counts = Counter(column)
        top = max(counts.values())
        tied = [label for label in column if counts[label] == top]  # in prompt order
        ties += len(set(tied)) > 1
        voted.append(tied[0])
    return voted, ties


def _mode_check(task) -> None:
    decoding = getattr(task, "decoding", "parallel")
    if task.mode not in MODES or (task.mode == "options" and task.family == "mlm" and decoding != "parallel"):
        raise ConfigError(f"prompt ensembles score entries teacher-forced in one pass ({', '.join(MODES)} modes); "
                          f"{task.task} runs in mode {task.mode!r} (decoding {decoding}): not implemented")


@torch.no_grad()
def batched_option_scores(task, scorer, split: str, num_prompts: int) -> list[list[list[float]]]:
    """``out[k][i]``: prompt k's score of every option of example i of ``split``, every prompt of a chunk of
    examples in ONE forward pass (rows repeated per prompt, ``prompt_index`` k); option scores are the
    summed log-probabilities of the option's tokens, as :meth:`ClassificationTask.predict` scores them."""
    _mode_check(task)
    items, size = task.items(split), int(task.task_cfg.get("batch_size", 32))
    out: list[list[list[float]]] = [[] for _ in range(num_prompts)]
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        entries = [e for it in chunk for e in it.entries]
        rows = [(k, e) for k in range(num_prompts) for e in entries]
        decoders = [e.decoder_input_ids for _, e in rows]
        batch = pad_batch([e.input_ids for _, e in rows], [e.target_positions for _, e in rows], task.pad_id,
                          decoders if all(d is not None for d in decoders) else None,
                          soft_positions=[e.soft_positions for _, e in rows], prompt_index=[k for k, _ in rows])
        batch = batch.to(task.backbone.device)
        logits = scorer(batch)
        device = logits.device
        slot_tokens = torch.tensor([t for _, e in rows for t in e.token_ids], device=device)
        slot_owner = torch.tensor([u for u, (_, e) in enumerate(rows) for _ in e.token_ids], device=device)
        units = unit_log_probs(logits, slot_tokens, slot_owner, len(rows)).view(num_prompts, len(entries)).cpu()
        for k in range(num_prompts):
            flat = units[k].tolist()
            for it in chunk:
                out[k].append(flat[: len(it.entries)])
                flat = flat[len(it.entries) :]
    return out


def argmax_first(scores: Sequence[float]) -> int:
    """The first index of the highest score (as :meth:`ClassificationTask.predict` picks)."""
    return max(range(len(scores)), key=scores.__getitem__)


def average_metrics(per_prompt: Sequence[Mapping]) -> dict:
    """Every numeric overall metric averaged over the prompts (``n`` kept as it is)."""
    keys = [k for k, v in per_prompt[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    out = {k: sum(float(m[k]) for m in per_prompt) / len(per_prompt) for k in keys if k != "n"}
    out["n"] = per_prompt[0].get("n")
    return out


def ensemble_split(task, split: str, scores: list[list[list[float]]]) -> dict:
    """Per-prompt predictions and metrics of one split, the vote and its metrics."""
    from bench.superglue.metrics import superglue_metrics

    examples = task.examples(split)
    preds = [[argmax_first(s) for s in prompt] for prompt in scores]
    voted, ties = majority_vote(preds)
    per_prompt = [superglue_metrics(task.task, examples, p) for p in preds]
    ensemble = superglue_metrics(task.task, examples, voted)
    n_options = [max(len(s) for s in column) for column in zip(*scores, strict=True)]
    votes = [[float(sum(p[i] == j for p in preds)) for j in range(n_options[i])] for i in range(len(examples))]
    return {"preds": preds, "voted": voted, "ties": ties, "per_prompt": per_prompt, "ensemble": ensemble,
            "votes": votes}


def _input_paths(cfg: Mapping) -> list[tuple[Path, dict]]:
    from bench.inputs import load_inputs

    refs = cfg.get("inputs")
    if not refs:
        raise ConfigError(f"no input runs for {cfg['task']['name']} x {cfg['model']['name']}: a prompt ensemble reads "
                          "the Prompt Tuning runs of its needs.presets x needs.seeds (run it with python -m bench.run "
                          "experiment=lester_ensemble_<task>, whose needs: block names them)")
    results = Path(cfg["paths"]["results_dir"])
    records = load_inputs(refs, results)
    paths = [Path(r["path"]) if Path(r["path"]).is_absolute() else results / r["path"] for r in refs]
    return sorted(zip(paths, records, strict=True), key=lambda pr: (int(pr[1]["spec"]["seed"]), pr[1]["name"]))


def check_members(cfg: Mapping, members: Sequence[tuple[Path, dict]], num_prompts: int) -> None:
    """The input runs are Prompt Tuning runs of this job's recipe (only seed, rank, num_prompts and runner differ)."""
    wrong = [r["name"] for _, r in members if (r.get("spec") or {}).get("method") != "prompt_tuning"]
    if wrong:
        raise ConfigError(f"input runs {wrong} are not prompt_tuning runs: check needs.presets of this preset")
    own = family_hash(resolved_config(cfg), drop=FAMILY_DROP)
    strangers = [r["name"] for _, r in members if family_hash(r.get("config") or {}, drop=FAMILY_DROP) != own]
    if strangers:
        raise ConfigError(f"input runs {strangers} differ from this ensemble in more than seed, num_prompts and runner "
                          "(another model, template, prompt length or trainer): fix needs.presets or the overrides")
    if len(members) != num_prompts:
        raise ConfigError(f"{len(members)} input runs but method.component.num_prompts={num_prompts}: set num_prompts "
                          f"to the number of seeds in needs.seeds")


def run_prompt_ensemble(cfg: Mapping, backbone, method) -> dict:
    """Score the K input runs' prompts in one batched pass per chunk; vote; per-prompt, average, best, ensemble."""
    from bench.precision import autocast_for
    from bench.predictions import row
    from bench.superglue.task import ClassificationTask

    if getattr(method, "name", None) != "prompt_tuning" or not hasattr(method, "load_prompts"):
        raise ConfigError("a prompt ensemble loads saved Prompt Tuning prompts: use method=prompt_tuning")
    members = _input_paths(cfg)
    check_members(cfg, members, method.num_prompts)
    method.load_prompts([read_prompt(path, record) for path, record in members])
    task = ClassificationTask(cfg, backbone, method)
    method.eval_mode()
    scorer = method.scorer()
    selection, report = task.selection_split, task.report_split
    results: dict[str, dict] = {}
    with autocast_for(backbone):
        for split in task.eval_splits:
            results[split] = ensemble_split(task, split, batched_option_scores(task, scorer, split, method.num_prompts))
    chosen = None
    if selection in results:
        chosen = argmax_first([m["overall"]["score"] for m in results[selection]["per_prompt"]])
    metrics = {}
    for split, res in results.items():
        per = res["per_prompt"]
        best = argmax_first([m["overall"]["score"] for m in per])
        subsets = {"average": average_metrics([m["overall"] for m in per]), "best": dict(per[best]["overall"])}
        if chosen is not None:
            subsets["best_selected"] = dict(per[chosen]["overall"])
        subsets.update({f"prompt_{k}": dict(m["overall"]) for k, m in enumerate(per)})
        metrics[split] = {**res["ensemble"], "subsets": subsets}
        log.info("%s %s: ensemble %.4f, average %.4f, best %.4f (%d ties)", task.task, split,
                 res["ensemble"]["overall"]["score"], subsets["average"]["score"], subsets["best"]["score"], res["ties"])
    rows = [row(ex.uid, split, ex.label, voted, votes) for split, res in results.items()
            for ex, voted, votes in zip(task.examples(split), res["voted"], res["votes"], strict=True)]
    prompts = [{"name": record["name"], "seed": int(record["spec"]["seed"]), "prompt_sha256": record["prompt"]["sha256"],
                "best_on": sorted(s for s, res in results.items()
                                  if argmax_first([m["overall"]["score"] for m in res["per_prompt"]]) == k)}
               for k, (_, record) in enumerate(members)]
    return {
        "metrics": metrics, "selection_split": None, "report_split": report,
        "per_example": rows,  # scores: the votes each label got
        "protocol": {"selection_split": None, "report_split": report, "seeds": [p["seed"] for p in prompts],
                     "selection_rule": f"{TIE_RULE}; each prompt selected by its own run; subsets.best = the best "
                                       f"prompt on the reported split itself (Lester et al. Table 3); "
                                       f"subsets.best_selected = the best prompt on {selection}"},
        "extra": {"dataset": task.task, "variant": task.variant, "mode": task.mode,
                  "template": None if task.template is None else task.template.text,
                  "n_examples": {split: len(task.examples(split)) for split in results},
                  "ensemble": {"n_prompts": method.num_prompts, "prompts": prompts, "tie_rule": TIE_RULE,
                               "ties": {split: res["ties"] for split, res in results.items()},
                               "best_selected": None if chosen is None else prompts[chosen]["name"],
                               "batched": "one forward pass per chunk of examples for all prompts"},
                  "fit": None},
    }
