"""Mini models: small LMs pretrained on the LAMA evidence sentences (what they are; whether one is built).

A mini model's YAML has ``build: {kind: pretrain, recipe: <conf/pretrain name>, minutes: <estimate>}``.
It is saved in the same hub-cache layout as the tiny models (<models_dir>/hub/models--bench-local--<name>)
and loaded through the same path. Loading never trains one: :func:`require_built` names the command;
the build itself (``ensure_built``, ``build_mini``) lives in ``bench.pretrain.publish``, called by the
job before it loads weights and by ``make mini-models``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, MissingWeightsError
from bench.models.tiny import current_build

MINI_MODELS = ("mini-bert", "mini-gpt2")
RECORD, LOSS_LOG = "pretrain_record.json", "pretrain_log.jsonl"


def is_mini(cfg: Mapping[str, Any]) -> bool:
    build = cfg.get("build") or {}
    return isinstance(build, Mapping) and build.get("kind") == "pretrain"


def model_config(name: str) -> dict[str, Any]:
    from bench.backbones.configs import load_model_config

    cfg = load_model_config(name)
    if not is_mini(cfg):
        raise ConfigError(f"model {name!r} is not a mini model (its build: has no `kind: pretrain`)")
    return cfg


def recipe_of(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The conf/pretrain recipe a mini model config names, with the build block's `overrides` applied."""
    from bench.pretrain.recipe import load_recipe

    build = cfg["build"]
    overrides = [f"{k}={json.dumps(v)}" for k, v in (build.get("overrides") or {}).items()]
    recipe = load_recipe(str(build["recipe"]), overrides)
    recipe["name"] = cfg["name"]
    if recipe["arch"] != cfg["arch"]:
        raise ConfigError(f"model {cfg['name']!r} has arch {cfg['arch']!r} but recipe {build['recipe']!r} "
                          f"trains {recipe['arch']!r}")
    return recipe


def fingerprint(cfg: Mapping[str, Any]) -> str:
    from bench.pretrain.recipe import recipe_fingerprint

    return recipe_fingerprint(recipe_of(cfg))


def require_built(cfg: Mapping[str, Any], models_dir: str | Path | None = None) -> str:
    """Revision of the current build of a mini model; MissingWeightsError naming the build command otherwise."""
    found = current_build(cfg, models_dir)
    if found is not None and found[1].get("fingerprint") == fingerprint(cfg):
        return found[0]
    state = "is not built yet" if found is None else f"changed recipe or inputs since revision {found[0][:12]}"
    minutes = (cfg.get("build") or {}).get("minutes", "several")
    raise MissingWeightsError(
        f"mini model {cfg['name']!r} {state}; loading never trains a model. Build it first (about {minutes} "
        f"minutes on 2 CPU cores): `make mini-models` or `python -m bench.pretrain {cfg['name']}` "
        f"(`python -m bench.run ... model={cfg['name']}` builds it before loading)")
