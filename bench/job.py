"""One job = one (preset, model, seed): every prompt rank it covers, on one loaded backbone, one record per rank.

``bench.run`` (the Hydra app) calls :func:`run_job` once per job, in this process or in a launcher's
worker (Hydra's joblib or submitit launchers). Runs whose finished record exists are skipped before
any weights load; a crashed rank leaves its traceback in ``results/failed/`` and the other ranks go
on; the job then raises :class:`JobFailed` naming them, so Hydra marks the job failed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from bench.errors import BenchError, ConfigError, MissingDataError
from bench.gpu_slots import pick_job_device
from bench.identity import resolved_config, spec_from_config
from bench.inputs import resolve_inputs
from bench.methods.prompt_store import write_prompt
from bench.paths import uses_run_paths
from bench.predictions import write_predictions
from bench.records import RunSpec, is_finished, record_path, write_failure, write_record

log = logging.getLogger("bench.job")


class JobFailed(BenchError):
    """Some runs of a job crashed; their tracebacks are in results/failed/."""


@dataclass
class PlannedRun:
    """One rank of a job: its config, spec and record path."""

    rank: int | None
    cfg: DictConfig = field(repr=False)
    spec: RunSpec
    path: Path


@dataclass
class JobOutcome:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_applicable: str | None = None


def preset_of(cfg: DictConfig) -> str | None:
    """The experiment preset the config was composed from (Hydra's choice), if any."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    choice = HydraConfig.get().runtime.choices.get("experiment")
    return None if choice in (None, "null") else str(choice)


def prompt_ranks(template_cfg: Mapping, relations: Sequence[str] | str | None) -> list[int]:
    """Every rank a template config can select: prompt-set ranks of the relations, or the ids of ``texts``."""
    kind = template_cfg.get("kind")
    if kind == "fixed" and template_cfg.get("texts"):
        texts = template_cfg["texts"]
        return sorted(int(k) for k in texts) if isinstance(texts, Mapping) else list(range(len(texts)))
    if kind == "prompt_set":
        from bench.io_utils import read_jsonl
        from bench.lama.data import select_relations
        from bench.prompts import prompt_set_path

        wanted = set(select_relations(relations or "all"))
        rows = read_jsonl(prompt_set_path(str(template_cfg["prompt_set"])), required=("relation", "rank"))
        return sorted({int(r["rank"]) for r in rows if r["relation"] in wanted})
    raise ConfigError(f"template {template_cfg.get('name')!r} (kind {kind}) has no ranks to loop over; "
                      "drop ranks= or pick a prompt-set / pattern template")


def job_ranks(cfg: DictConfig) -> list[int | None]:
    """``ranks``: null = the template's own rank; ``preset`` = the preset's ``sweep.ranks``; ``all``; or a list."""
    ranks = cfg.get("ranks")
    if ranks == "preset":
        ranks = (cfg.get("sweep") or {}).get("ranks")
    if ranks is None:
        return [None]
    if ranks == "all":
        relations = cfg.task.get("relations", "all")
        relations = relations if isinstance(relations, str) or relations is None else list(relations)
        return list(prompt_ranks(OmegaConf.to_container(cfg.template, resolve=True), relations))
    if isinstance(ranks, str):
        raise ConfigError(f"ranks={ranks!r}: expected null, preset, all or a list of ints such as [0,2]")
    return [int(r) for r in ranks]


def not_applicable(cfg: DictConfig) -> str | None:
    """Why a preset does not apply to the model (its ``sweep.archs``; ``sweep.checkpoints`` against the model's
    ``checkpoint`` field, where it has one: Lester's span_corruption / lm_adapt axis) or to the seed
    (``sweep.first_seed_only``: only the first of ``needs.seeds``), or None."""
    archs = (cfg.get("sweep") or {}).get("archs")
    if archs and cfg.model.get("arch") not in archs:
        return f"only for {', '.join(archs)} models (this is {cfg.model.get('arch')})"
    checkpoints, own = (cfg.get("sweep") or {}).get("checkpoints"), cfg.model.get("checkpoint")
    if checkpoints and own is not None and own not in checkpoints:
        return f"only for {', '.join(checkpoints)} checkpoints (this is {own})"
    seeds = (cfg.get("needs") or {}).get("seeds") or []
    if (cfg.get("sweep") or {}).get("first_seed_only") and seeds and int(cfg.seed) != int(seeds[0]):
        # a job that reads every seed's runs (a prompt ensemble) gives the same record for each seed: run it once
        return f"run once per seed list, with its first seed ({seeds[0]}): it reads the runs of seeds {list(seeds)}"
    return None


def grid_points(cfg: DictConfig) -> list[dict]:
    """The preset's ``sweep.grid`` (dotted key -> values) as every combination, in order; ``grid_limit``
    (a debug setting) keeps the first N. No grid: one point, the config as composed."""
    grid = (cfg.get("sweep") or {}).get("grid") or {}
    keys = list(grid)
    points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(list(grid[k]) for k in keys))]
    limit = cfg.get("grid_limit")
    return (points[: int(limit)] if limit else points) or [{}]


def missing_data(cfg: DictConfig) -> MissingDataError | None:
    """The task's data check (``task.data_check``: a dotted ``f(resolved_cfg, method)``), before weights load."""
    name = cfg.task.get("data_check")
    if not name:
        return None
    try:
        get_method(str(name))(resolved_config(cfg), instantiate(cfg.method.component))
    except MissingDataError as err:
        return err
    return None


def check_data_files(cfg: DictConfig) -> dict:
    """The task's prepared data family against data_prep's MANIFEST (bench.data_check); what was verified."""
    from bench.data_check import check_family

    family, data = cfg.task.get("data_family"), Path(str(cfg.paths.data_dir))
    if not family or not data.is_dir():  # no folder: preflight names it with the fix
        return {"verified": False, "reason": "no data_family" if not family else f"no folder {data}"}
    return check_family(data, str(family))


def job_seeds(cfg: DictConfig) -> list[int | None]:
    """``joint_seeds``: the seeds whose runs this one job trains together (bench.study_join); [None]: its ``seed``."""
    seeds = cfg.get("joint_seeds")
    if not seeds:
        return [None]
    seeds = [int(s) for s in seeds]
    if int(cfg.seed) not in seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"joint_seeds={seeds} must list distinct seeds, seed={cfg.seed} among them "
                          "(bench.study passes seed=<the first>)")
    if (cfg.get("needs") or {}).get("presets"):
        raise ConfigError("joint_seeds cannot join runs that read other runs (needs.presets): drop joint_seeds")
    return list(seeds)


def plan_job(cfg: DictConfig, preset: str | None = None) -> list[PlannedRun]:
    """The runs of one job: one per seed (``joint_seeds``, else the job's seed), grid point and rank, the rank
    written into ``template.rank``."""
    runs = []
    results = Path(cfg.paths.results_dir) / "runs"
    for seed, point, rank in itertools.product(job_seeds(cfg), grid_points(cfg), job_ranks(cfg)):
        run_cfg = deepcopy(cfg)
        with open_dict(run_cfg):
            if seed is not None:  # one of the seeds a study joined into this job (bench.study_join)
                run_cfg.seed, run_cfg.joint_seeds = seed, None
            for key, value in point.items():
                OmegaConf.update(run_cfg, key, value, merge=False)
            if rank is not None:
                run_cfg.template.rank = rank
        spec = spec_from_config(run_cfg, preset)
        runs.append(PlannedRun(rank if rank is not None else run_cfg.template.get("rank"), run_cfg, spec,
                               record_path(results, spec)))
    return runs


def check_compatible(task_cfg: Mapping, method) -> None:
    """Refuse, before any weights load, task x method pairs that cannot work (from declared capabilities)."""
    kind, name = task_cfg.get("kind"), task_cfg.get("name")
    if method.task_kinds is not None and kind not in method.task_kinds:
        raise ConfigError(f"method={method.name} is defined for {' / '.join(method.task_kinds)} tasks only, "
                          f"not task={name}")
    spaces = list(task_cfg.get("output_spaces") or ["vocab"])
    if method.output_space not in spaces:
        raise ConfigError(f"method={method.name} scores a fixed label set with a classifier head; task={name} "
                          f"needs {' or '.join(spaces)} outputs (the LM head over the vocabulary: fine-tune all "
                          "weights at the mask with method=pet)")
    if method.uses_demonstrations and not task_cfg.get("demonstrations", False):
        raise ConfigError(f"method={method.name}: in-context demonstrations are not implemented for "
                          f"{str(kind).upper()} tasks (task={name}); use method=manual for zero-shot probing")


def selection_rule(resolved: Mapping, method) -> str:
    """The protocol's selection rule, in words, from what the run was configured to do."""
    if not method.trains:
        return "none: nothing trained, nothing selected"
    trainer = resolved.get("trainer") or {}
    tie = "later" if trainer.get("prefer_later_on_tie") else "earlier"
    every = f"every {trainer['eval_every']} steps" if trainer.get("eval_every") else "every epoch"
    return (f"best selection-split score, evaluated {every}; ties keep the {tie} state; "
            f"stop after {trainer.get('early_stopping_patience')} evaluations without improvement")


def _payload(resolved: dict, backbone, method, device, dtype, started: float, started_at: str,
             integrity: Mapping | None = None, runner=None) -> dict:
    from bench.methods.base import count_parameters
    from bench.provenance import data_checksums, git_state, machine, package_versions

    runner = runner or get_method(str(resolved["task"]["runner"]))  # given: a run trained with others (joint_runner)
    payload = runner(resolved, backbone, method)
    trainable = sum(p.numel() for p in method.trainable_parameters())
    own = sum(count_parameters(m) for m in method.own_modules().values())
    payload["params"] = {"trainable": trainable, "total": count_parameters(backbone.model) + own,
                         "method_modules": own}
    payload.setdefault("protocol", {"selection_split": payload.get("selection_split"),
                                    "selection_rule": selection_rule(resolved, method),
                                    "report_split": payload.get("report_split"), "seeds": [int(resolved["seed"])]})
    payload["inputs"] = resolved.pop("inputs", None) or []  # runs read, by name and checksum (bench.inputs)
    payload["config"] = resolved
    payload["provenance"] = {
        "git": git_state(), "packages": package_versions(),
        "data": {**data_checksums(Path(resolved["paths"]["data_dir"]), resolved["task"]["data_family"]),
                 "integrity": dict(integrity or {"verified": False})},
        "model": {"name": backbone.name, "hub_id": backbone.hub_id, "revision": backbone.revision,
                  "path": str(backbone.path) if backbone.path else None, "source": backbone.source,
                  "mlm_head_layer_norm_eps": getattr(backbone, "mlm_head_layer_norm_eps", None)},  # as set, None: loaded
        "machine": machine(device), "dtype": str(dtype).removeprefix("torch."),
        "started_at": started_at, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    return payload


def _ensure_model_built(model_cfg: Mapping) -> None:
    """The job (not the loader) builds a missing mini model first, saying how long it takes."""
    from bench.models.mini import is_mini

    if is_mini(model_cfg):
        from bench.pretrain.publish import ensure_built

        ensure_built(model_cfg)


def _fail(runs: Sequence[PlannedRun], err: BaseException, results: Path) -> list[str]:
    names = []
    for run in runs:
        failed = write_failure(results / "failed", run.spec, err, resolved_config(run.cfg))
        log.error("run %s failed (%s: %s); details: %s (runs/ untouched)", run.spec.name, type(err).__name__,
                  str(err).splitlines()[0] if str(err) else "", failed)
        names.append(run.spec.name)
    return names


@uses_run_paths  # paths.* of the config are the suite's folders for the whole job (bench.paths)
def run_job(cfg: DictConfig, preset: str | None = None) -> JobOutcome:
    """Run every unfinished rank of the job; raise JobFailed naming the ranks that crashed."""
    import torch

    from bench.backbones.loading import load_backbone
    from bench.checks import preflight, validate_config
    from bench.device import pick_device
    from bench.precision import precision_for_method

    preset = preset or preset_of(cfg)
    try:
        validate_config(cfg)  # unknown keys, enumerations: before anything is read
        integrity = check_data_files(cfg)  # before the skip below: a finished run must not hide a changed file
    except BenchError as err:  # a study then lists the job's runs as failed, with the reason, not as missing
        with contextlib.suppress(Exception):  # a config too broken to plan leaves the error alone
            _fail(plan_job(cfg, preset), err, Path(cfg.paths.results_dir))
        raise
    outcome = JobOutcome()
    why = not_applicable(cfg)
    gap = None if why else missing_data(cfg)  # before weights load: data the local mirror lacks
    if why or gap:
        if cfg.get("ranks") == "preset":  # inside a study: another architecture's preset or a data gap is no failure
            log.warning("skip %s x %s: %s", preset, cfg.model.name, why or gap)
            outcome.not_applicable = why or str(gap).splitlines()[0]
            return outcome
        raise gap or ConfigError(f"experiment={preset} is {why}")
    runs = plan_job(cfg, preset)
    force = bool(cfg.get("force"))
    todo = [r for r in runs if force or not is_finished(r.path)]
    outcome.skipped = [r.spec.name for r in runs if r not in todo]
    for name in outcome.skipped:
        log.info("skip %s: finished record exists (force=true reruns it)", name)
    if not todo:
        return outcome
    results = Path(cfg.paths.results_dir)
    first = resolved_config(todo[0].cfg)
    try:
        preflight(first)  # inputs, outputs, device: before any weights load
        inputs = resolve_inputs(cfg, plan_job)  # the runs it reads (needs.presets), by exact name (bench.inputs)
    except BenchError as err:
        with contextlib.suppress(OSError):  # an unwritable results folder cannot take a failure record
            _fail(todo, err, results)
        raise
    try:
        check_compatible(first["task"], method := instantiate(todo[0].cfg.method.component))
        device = pick_device(pick_job_device(cfg.device))
        precision = precision_for_method(device, first, method)  # bench.precision: fp32 masters, autocast
        dtype = precision.storage
        _ensure_model_built(first["model"])
        backbone = load_backbone(first["model"], device=device, precision=precision, models_dir=first["paths"]["models_dir"])
    except Exception as err:
        _fail(todo, err, results)
        raise
    failed: list[str] = []
    joined = {}  # soft prompts of runs that differ only in seed / trainer values train together (issue 29)
    if len(todo) > 1:
        from bench.superglue.joint_runner import train_jointly

        joined = train_jointly(todo, backbone)
    for i, run in enumerate(todo):
        resolved = resolved_config(run.cfg)
        if inputs:
            resolved["inputs"] = inputs  # read by the runner (bench.inputs.load_inputs), listed in the record
        started, started_at = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
        try:
            torch.manual_seed(int(run.cfg.seed))
            if (trained := joined.pop(run.spec.name, None)) is not None:  # bench.superglue.joint_runner
                method, runner = trained.method, trained.runner
            else:
                method, runner = instantiate(run.cfg.method.component), None
                if method.tunes_backbone and i > 0:  # the previous rank changed the weights: start from the checkpoint
                    backbone = load_backbone(first["model"], device=device, precision=precision,
                                             models_dir=first["paths"]["models_dir"])
                method.setup(backbone)
            payload = _payload(resolved, backbone, method, device, dtype, started, started_at, integrity, runner)
            payload["precision"] = precision.as_record()
            if (rows := payload.pop("per_example", None)) is not None:  # beside the record, checksummed in it
                payload["predictions"] = write_predictions(run.path, rows, force=force)
            if (vectors := payload.pop("prompt_vectors", None)) is not None:  # a run's selected soft prompt
                payload["prompt"] = write_prompt(run.path, vectors, force=force)  # (bench.methods.prompt_store)
            write_record(run.path, run.spec, payload, force=force)
        except KeyboardInterrupt:
            log.warning("interrupted during %s: finished records are kept; rerun to resume", run.spec.name)
            raise
        except FileExistsError as err:  # a parallel worker finished the same run first: its record stands
            log.warning("%s", err)
            continue
        except Exception as err:  # noqa: BLE001 - one rank's crash must not stop the others
            failed += _fail([run], err, results)
            continue
        outcome.ran.append(run.spec.name)
        summary = payload["metrics"].get(payload["report_split"], {}).get("overall", {})
        shown = {k: v for k, v in summary.items() if isinstance(v, float)}
        log.info("%s: %s %s -> %s", run.spec.name, payload["report_split"], shown, run.path)
    if failed:
        raise JobFailed(f"{len(failed)} of {len(todo)} runs failed (tracebacks in {results / 'failed'}): "
                        + ", ".join(failed))
    return outcome
