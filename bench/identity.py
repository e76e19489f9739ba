"""A run's identity: the readable spec plus a hash of every resolved config value that changes its result.

Two runs share a record only when their result-relevant config is equal, so
``trainer.lr=1e-4,1e-3`` leaves two records. Keys that only say where things live or how the
job is scheduled (``IDENTITY_EXCLUDE``) are left out of the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.records import RunSpec

# dotted keys that never change a result: locations, scheduling, bookkeeping
IDENTITY_EXCLUDE = (
    "paths", "force", "hydra", "sweep", "ranks", "study", "model.path", "task.save_predictions", "tag", "grid_limit",
    "needs", "inputs",  # which runs a job reads is checked by exact name (bench.inputs), not hashed
    "trainer.joint", "trainer.joint_group_size", "joint_seeds",  # bench.joint: trained together or apart, the same result
    "task.val_selection_by",  # whose code selects on the report split: record text only (bench/superglue/runner.py)
)
HASH_CHARS = 8


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(leaf, None)


def identity_config(resolved: Mapping[str, Any]) -> dict:
    """The part of a resolved run config that decides its result."""
    tree = json.loads(json.dumps(resolved, default=str))
    for key in IDENTITY_EXCLUDE:
        _drop(tree, key)
    return tree


def flat_identity(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`identity_config` as dotted keys (``trainer.lr``) -> leaf values."""
    out: dict[str, Any] = {}

    def walk(tree: Any, prefix: str) -> None:
        for key, value in tree.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(identity_config(resolved), "")
    return out


def config_hash(resolved: Mapping[str, Any]) -> str:
    body = json.dumps(identity_config(resolved), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:HASH_CHARS]


def resolved_config(cfg: DictConfig | Mapping) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def spec_from_config(cfg: DictConfig | Mapping, preset: str | None = None) -> RunSpec:
    """The spec of one run (one prompt rank): readable fields from the config, plus its config hash."""
    resolved = resolved_config(cfg)
    rank = resolved["template"].get("rank")
    return RunSpec(task=str(resolved["task"]["name"]), variant=resolved["task"].get("variant"),
                   model=str(resolved["model"]["name"]), method=str(resolved["method"]["name"]),
                   template=str(resolved["template"]["name"]), rank=None if rank is None else int(rank),
                   seed=int(resolved["seed"]), tag=resolved.get("tag"), preset=preset,
                   config_hash=config_hash(resolved))


def family_hash(resolved: Mapping[str, Any], drop: tuple[str, ...] = ()) -> str:
    """The config hash without seed, prompt rank and the dotted ``drop`` keys: the runs that differ only
    there (PET's patterns x repetitions of one generation) are one family."""
    tree = identity_config(resolved)
    for key in ("seed", "template.rank", *drop):
        _drop(tree, key)
    body = json.dumps(tree, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:HASH_CHARS]
