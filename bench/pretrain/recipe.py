"""Pretraining recipes (conf/pretrain/*.yaml) and their fingerprints; light, so loaders can check a build."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ConfigError
from bench.io_utils import sha256_file
from bench.paths import REPO_ROOT

RECIPE_DIR = REPO_ROOT / "conf" / "pretrain"
BUILDER_VERSION = 1


def load_recipe(name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """conf/pretrain/<name>.yaml with dotted ``key=value`` overrides (values parsed as YAML)."""
    path = RECIPE_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
        raise ConfigError(f"no pretraining recipe {path}; known: {known}")
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    for item in overrides:
        key, _, value = item.partition("=")
        node = recipe
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return recipe


def _evidence_path() -> Path:
    from bench.models.tokenizers import evidence_source

    return evidence_source()


def input_fingerprint(recipe: Mapping[str, Any]) -> str:
    """Hash of what a build reads besides the recipe: the evidence file and the forced LAMA list."""
    from bench.models.tokenizers import lama_vocab

    parts = [sha256_file(_evidence_path()), *lama_vocab(recipe["tokenizer"]["force_lama_vocab"])]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def recipe_fingerprint(recipe: Mapping[str, Any]) -> str:
    body = {"recipe": recipe, "builder": BUILDER_VERSION, "inputs": input_fingerprint(recipe)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()
