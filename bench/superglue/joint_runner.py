"""SuperGLUE / FewGLUE soft-prompt runs of one job trained together on its frozen backbone (issue 29).

A job (:mod:`bench.job`) holds runs that differ in seed (a study's seeds joined into one job with
``joint_seeds``, :mod:`bench.study_join`), grid point or prompt rank. Runs whose configs differ only in
``seed`` and ``trainer.*`` values, whose runner is :func:`bench.superglue.runner.run_classification` and
whose method joins (:func:`bench.joint.why_not_joinable`: P-Tuning, Prompt Tuning on a frozen encoder-only
or decoder-only backbone) are set up one after another exactly as their separate runs would be
(``torch.manual_seed(seed)``, the method's setup, :func:`~bench.superglue.runner.prepare_classification`),
each keeping the global RNG state its own ``fit`` would start with, and trained by
:func:`bench.joint.fit_jointly`. The job then scores and writes each run's record as for a separate run,
plus ``extra.joint``. A run whose setup fails, or every run of a group whose joint training fails, is
left to the job, which runs it alone as before (and records its failure as a separate run's).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate

from bench.identity import identity_config, resolved_config
from bench.joint import Member, fit_jointly, joint_extra, why_not_joinable
from bench.methods.soft import SoftPromptMethod
from bench.superglue.runner import PreparedRun, finish_classification, prepare_classification
from bench.superglue.task import LAST
from bench.train import FitResult

log = logging.getLogger(__name__)
RUNNER = "bench.superglue.runner.run_classification"  # the task runner whose runs join (conf/task/*.yaml)


def why_not_joinable_config(resolved: Mapping) -> str | None:
    """From the config alone (before weights load): None when this run may train together with others, else why not."""
    trainer = resolved.get("trainer") or {}
    if str(trainer.get("joint", "auto")).lower() == "off":
        return "trainer.joint=off"
    runner = (resolved.get("task") or {}).get("runner")
    if runner != RUNNER:
        return f"task runner {runner} (only SuperGLUE / FewGLUE classification runs join; LAMA joins relations inside a run)"
    if (resolved.get("needs") or {}).get("presets"):
        return "it reads other runs (needs.presets)"
    if trainer.get("pet_unlabeled_logits") or trainer.get("ipet_generation") or float(trainer.get("aux_mlm_weight") or 0):
        return "PET's pattern-run settings (trainer.pet_unlabeled_logits, ipet_generation or aux_mlm_weight)"
    family = (resolved.get("model") or {}).get("family")
    if family not in ("mlm", "clm"):
        return f"backbone family {family!r} (seq2seq decoders are not joined)"
    method = instantiate(resolved["method"]["component"])
    if not method.trains:
        return f"method {method.name} does not train"
    if not isinstance(method, SoftPromptMethod):
        return f"method {method.name} is not a soft prompt on a frozen backbone (P-Tuning and Prompt Tuning join)"
    if method.tunes_backbone:
        return f"method {method.name} tunes the backbone (each run needs its own weights)"
    return None


def join_key(resolved: Mapping) -> str:
    """Runs with equal keys differ only in what a joint run holds apart: ``seed`` and ``trainer.*`` values."""
    tree = identity_config(resolved)
    tree.pop("seed", None)
    tree.pop("trainer", None)
    return json.dumps(tree, sort_keys=True, default=str)


@dataclass
class JointRun:
    """A run trained together with others: its trained method and the runner that finishes its record."""

    method: Any
    runner: Callable[[Mapping, Any, Any], dict]


def train_jointly(runs: Sequence[Any], backbone) -> dict[str, JointRun]:
    """Train the joinable ones of ``runs`` (:class:`bench.job.PlannedRun`, in order) together, group by group;
    ``{record name: JointRun}`` for every run trained so (the others are left to the job)."""
    groups: dict[str, list[tuple[Any, dict]]] = {}
    for run in runs:
        if run.cfg.task.get("runner") != RUNNER:  # e.g. a LAMA job's ranks: not resolved for nothing
            continue
        resolved = resolved_config(run.cfg)
        try:
            reason = why_not_joinable_config(resolved)
        except Exception as err:  # noqa: BLE001 - e.g. a method config that does not instantiate: the job's run says so
            reason = f"{type(err).__name__}: {err}"
        if reason is None:
            groups.setdefault(join_key(resolved), []).append((run, resolved))
    out: dict[str, JointRun] = {}
    for group in groups.values():
        if len(group) > 1:
            out.update(_train_group(group, backbone))
    return out


def _train_group(group: list[tuple[Any, dict]], backbone) -> dict[str, JointRun]:
    members: list[tuple[Any, Member, PreparedRun]] = []
    for run, resolved in group:
        try:  # as bench.job sets a run up, then the runner up to its fit
            torch.manual_seed(int(resolved["seed"]))
            method = instantiate(run.cfg.method.component)
            method.setup(backbone)
            prepared = prepare_classification(resolved, backbone, method)
        except Exception as err:  # noqa: BLE001 - the job runs it alone and records its failure there
            log.warning("%s is not trained jointly: its setup failed (%s: %s); it runs alone", run.spec.name,
                        type(err).__name__, err)
            continue
        member = Member(method, prepared.task, resolved["trainer"], prepared.selection or LAST, prepared.task.seed,
                        prepared.per_epoch, torch.get_rng_state(), run.spec.name)
        members.append((run, member, prepared))
    reason = why_not_joinable([m.method for _, m, _ in members]) if len(members) > 1 else "fewer than two runs"
    if reason:
        log.info("%d runs train one after another: %s", len(group), reason)
        return {}
    group_size = members[0][1].trainer_cfg.get("joint_group_size")
    names = [run.spec.name for run, _, _ in members]
    log.info("training %d runs together on one frozen backbone (bench.joint): %s", len(members), ", ".join(names))
    started = time.perf_counter()
    try:
        fit_jointly([m for _, m, _ in members], group_size=group_size)
    except Exception as err:  # noqa: BLE001 - each run then trains alone and fails (or not) on its own
        log.warning("joint training of %d runs failed (%s: %s): they run one after another", len(members),
                    type(err).__name__, err)
        return {}
    extra = {**joint_extra(len(members), group_size), "runs": names,
             "train_wall_s": round(time.perf_counter() - started, 3)}  # the group's; wall_time_s: this run's own part
    return {run.spec.name: JointRun(member.method, functools.partial(_finish, prepared=prepared, result=member.result,
                                                                      joint=extra))
            for run, member, prepared in members}


def _finish(cfg: Mapping, backbone, method, prepared: PreparedRun, result: FitResult, joint: dict) -> dict:
    payload = finish_classification(cfg, backbone, method, prepared, result)
    payload["extra"]["joint"] = joint
    return payload


__all__ = ["JointRun", "join_key", "train_jointly", "why_not_joinable_config"]
