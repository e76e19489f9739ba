"""Model configs (conf/model/*.yaml) as checked plain dicts; no torch, so any layer may read them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.paths import REPO_ROOT

FAMILIES = ("mlm", "clm", "seq2seq")
ARCHES = ("bert", "roberta", "albert", "gpt2", "t5")
REQUIRED = ("name", "family", "arch", "hub_id", "revision", "path", "lama_vocab_key", "build")
MODEL_CONF_DIR = REPO_ROOT / "conf" / "model"


def load_model_config(name: str, conf_dir: str | Path | None = None) -> dict[str, Any]:
    """Read conf/model/<name>.yaml as a plain dict (what Hydra puts under `model`)."""
    import yaml

    folder = Path(conf_dir) if conf_dir else MODEL_CONF_DIR
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"no model config {path}; known models: {', '.join(known)}")
    return check_model_config(yaml.safe_load(path.read_text(encoding="utf-8")), source=str(path))


def check_model_config(cfg: Mapping[str, Any], source: str = "model config") -> dict[str, Any]:
    """Plain-dict copy of a model config (DictConfig accepted) after checking keys and enumerations."""
    if hasattr(cfg, "_metadata"):  # omegaconf DictConfig
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    cfg = dict(cfg)
    missing = [key for key in REQUIRED if key not in cfg]
    if missing:
        raise ConfigError(f"{source}: missing keys {missing} (every model config needs {list(REQUIRED)})")
    if cfg["family"] not in FAMILIES:
        raise ConfigError(f"{source}: family {cfg['family']!r} is not one of {FAMILIES}")
    if cfg["arch"] not in ARCHES:
        raise ConfigError(f"{source}: arch {cfg['arch']!r} is not one of {ARCHES}")
    cfg.setdefault("hub_aliases", [])
    _check_head_eps(cfg.get("mlm_head_layer_norm_eps"), source)
    return cfg


def _check_head_eps(value: Any, source: str) -> None:
    """``mlm_head_layer_norm_eps``: null, a positive number, or a mapping arch -> positive number."""
    fix = ("use null (as loaded), a positive number (e.g. 1.0e-5) or a mapping arch -> number "
           "(e.g. {albert: 1.0e-5}: only ALBERT's head)")
    items = value.items() if isinstance(value, Mapping) else [(None, value)]
    for arch, eps in items:
        if arch is not None and arch not in ARCHES:
            raise ConfigError(f"{source}: mlm_head_layer_norm_eps names arch {arch!r}, not one of {ARCHES}; {fix}")
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, int | float) or eps <= 0):
            raise ConfigError(f"{source}: mlm_head_layer_norm_eps={value!r}; {fix}")


def head_eps_for(cfg: Mapping[str, Any]) -> float | None:
    """The masked-LM head LayerNorm eps ``mlm_head_layer_norm_eps`` asks for this model's arch (None: leave it)."""
    value = cfg.get("mlm_head_layer_norm_eps")
    if isinstance(value, Mapping):
        value = value.get(cfg["arch"])
    return None if value is None else float(value)
