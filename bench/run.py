"""Hydra entry point: ``python -m bench.run task=lama model=tiny-bert method=manual template=lama``.

One call = one run spec = one record under ``results/runs/<task>/``. A spec whose finished record
exists is skipped (``force=true`` reruns it and keeps the old record as a ``.bak``).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bench.errors import BenchError, ConfigError
from bench.records import RunSpec, is_finished, record_path, write_failure, write_record

log = logging.getLogger("bench.run")


def spec_from_config(cfg: DictConfig) -> RunSpec:
    template = str(cfg.template.name)
    rank = cfg.template.get("rank")
    if rank:
        template += f"-r{rank}"
    return RunSpec(task=str(cfg.task.name), variant=cfg.task.get("variant"), model=str(cfg.model.name),
                   method=str(cfg.method.name), template=template, seed=int(cfg.seed), tag=cfg.get("tag"))


def check_compatible(task_cfg: dict, method) -> None:
    """Refuse, before any weights load, task x method pairs that cannot work (one line each)."""
    if task_cfg["kind"] != "lama":
        if hasattr(method, "lama_predictions"):
            raise ConfigError(f"method={method.name} is LAMA's majority-object baseline and is defined for LAMA "
                              f"tasks only, not task={task_cfg['name']}")
        return
    if getattr(method, "output_space", "vocab") != "vocab":
        raise ConfigError(f"method={method.name} scores a fixed label set with a classifier head; LAMA needs "
                          "the LM head over the vocabulary (fine-tune all weights at the mask with method=pet)")
    if hasattr(method, "with_demonstrations"):
        raise ConfigError(f"method={method.name}: in-context demonstrations are not implemented for LAMA "
                          "(only for classification tasks); use method=manual for zero-shot probing")


def _run_task(cfg: dict, backbone, method) -> dict:
    kind = cfg["task"]["kind"]
    if kind == "lama":
        from bench.lama.runner import run_lama

        return run_lama(cfg, backbone, method)
    if kind == "classification":
        from bench.superglue.runner import run_classification

        return run_classification(cfg, backbone, method)
    raise BenchError(f"task kind {kind!r} has no runner yet (conf/task/{cfg['task']['name']}.yaml)")


def execute(cfg: DictConfig) -> Path:
    """Run one spec (or skip it when finished); return the record path."""
    from bench.backbones.loading import load_backbone
    from bench.device import pick_device, pick_dtype
    from bench.methods.base import count_parameters
    from bench.provenance import data_checksums, git_state, machine, package_versions

    spec = spec_from_config(cfg)
    results = Path(cfg.paths.results_dir)
    path = record_path(results / "runs", spec)
    if is_finished(path) and not cfg.force:
        log.info("skip %s: finished record at %s (force=true reruns it)", spec.name, path)
        return path

    resolved = OmegaConf.to_container(cfg, resolve=True)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        import torch

        torch.manual_seed(int(cfg.seed))
        device = pick_device(cfg.device)
        dtype = pick_dtype(device, cfg.dtype)
        method = instantiate(cfg.method.component)
        check_compatible(resolved["task"], method)
        backbone = load_backbone(resolved["model"], device=device, dtype=dtype)
        method.setup(backbone)
        payload = _run_task(resolved, backbone, method)
        trainable = sum(p.numel() for p in method.trainable_parameters())
        own = sum(count_parameters(m) for m in method.own_modules().values())
        payload["params"] = {"trainable": trainable, "total": count_parameters(backbone.model) + own,
                             "method_modules": own}
    except BenchError:
        raise
    except BaseException as err:
        failed = write_failure(results / "failed", spec, err, resolved)
        log.error("run %s failed; details kept apart in %s (runs/ untouched)", spec.name, failed)
        raise
    payload["config"] = resolved
    payload["provenance"] = {
        "git": git_state(),
        "packages": package_versions(),
        "data": data_checksums(Path(cfg.paths.data_dir), cfg.task.data_family),
        "model": {"name": backbone.name, "hub_id": backbone.hub_id, "revision": backbone.revision,
                  "path": str(backbone.path) if backbone.path else None, "source": backbone.source},
        "machine": machine(device),
        "dtype": str(dtype).removeprefix("torch."),
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    write_record(path, spec, payload, force=bool(cfg.force))
    summary = payload["metrics"].get(payload["report_split"], {}).get("overall", {})
    log.info("%s: %s macro_over_relations=%s pooled=%s -> %s", spec.name, payload["report_split"],
             summary.get("macro_over_relations"), summary.get("pooled"), path)
    return path


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        execute(cfg)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
