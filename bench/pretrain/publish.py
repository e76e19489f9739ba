"""Build a mini model and publish it: pretrain, save the snapshot, point refs/main at it, keep its record.

Called by the job before it loads weights (``bench.job``) and by ``python -m bench.pretrain``; never by
the loader, which only checks (``bench.models.mini.require_built``).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.io_utils import atomic_write_json, atomic_write_text
from bench.models.mini import LOSS_LOG, RECORD, fingerprint, is_mini, recipe_of
from bench.models.tiny import current_build, publish_snapshot, repo_folder
from bench.models.tiny import ensure_built as ensure_tiny_built
from bench.paths import models_dir as default_models_dir


@contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """One build of a model at a time across processes (e.g. a test run beside `make mini-models`)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_mini(cfg: Mapping[str, Any], models_dir: str | Path | None = None, progress: bool = True) -> str:
    """Pretrain the mini model of `cfg`, save it into <models_dir>/hub and point refs/main at it."""
    from bench.pretrain.build import run_recipe

    recipe = recipe_of(cfg)
    repo = repo_folder(cfg["hub_id"], Path(models_dir or default_models_dir()) / "hub")
    minutes = cfg["build"].get("minutes", "several")
    print(f"[bench] building mini model {cfg['name']}: pretraining on the LAMA evidence sentences takes about "
          f"{minutes} minutes on 2 CPU cores (once; cached in {repo})", flush=True)
    built = run_recipe(recipe, progress=progress)
    record = built.record

    def describe(staging: Path, revision: str) -> dict[str, Any]:
        atomic_write_json(staging / RECORD, {**record, "revision": revision})
        atomic_write_text(staging / LOSS_LOG, "".join(json.dumps(e) + "\n" for e in record["loss_log"]))
        return {"name": cfg["name"], "hub_id": cfg["hub_id"], "revision": revision, "fingerprint": record["fingerprint"],
                "kind": "pretrain", "recipe": recipe, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "seconds": record["seconds"], "heldout_loss": record["heldout_loss"]}

    revision, snapshot, _ = publish_snapshot(repo, built.result.model, built.tokenizer, describe)
    kept = _keep_record(cfg["name"], revision, {**record, "revision": revision, "snapshot": str(snapshot)})
    print(f"[bench] built {cfg['name']}: revision {revision} in {record['seconds']['total'] / 60:.1f} min -> "
          f"{snapshot}; pretraining record: {kept}", flush=True)
    return revision


def _keep_record(name: str, revision: str, record: Mapping[str, Any]) -> Path:
    """Copy the pretraining record to <results>/pretrain/<name>__<revision>.json (one per build, never overwritten)."""
    from bench.paths import results_dir

    path = results_dir() / "pretrain" / f"{name}__{revision[:12]}.json"
    if not path.exists():
        atomic_write_json(path, record)
    return path


def build_record(cfg: Mapping[str, Any], models_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The pretraining record of the current build, or None when there is none."""
    found = current_build(cfg, models_dir)
    if found is None:
        return None
    path = repo_folder(cfg["hub_id"], Path(models_dir or default_models_dir()) / "hub") / "snapshots" / found[0] / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def ensure_built(cfg: Mapping[str, Any], models_dir: str | Path | None = None, progress: bool = True) -> str:
    """Revision of a built model (tiny or mini); builds (pretrains) it first when absent or its recipe/inputs changed."""
    if not is_mini(cfg):
        return ensure_tiny_built(cfg, models_dir)
    wanted = fingerprint(cfg)
    repo = repo_folder(cfg["hub_id"], Path(models_dir or default_models_dir()) / "hub")
    with _lock(repo):
        found = current_build(cfg, models_dir)
        if found is not None and found[1].get("fingerprint") == wanted:
            record = build_record(cfg, models_dir)
            if record is not None:  # builds made before results/pretrain existed, or with another results dir
                _keep_record(cfg["name"], found[0], record)
            return found[0]
        if found is not None:
            print(f"[bench] recipe or inputs of {cfg['name']} changed since revision {found[0]}; rebuilding", flush=True)
        return build_mini(cfg, models_dir, progress=progress)
