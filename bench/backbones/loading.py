"""Load a backbone (model + tokenizer) from a model config: local path, hub cache, or the hub when reachable.

Order: `path` if set; tiny models (a `build:` recipe of random weights) are built on first use into
<models_dir>/hub and loaded from there through the hub-cache code path, as are mini models once
pretrained (the loader never trains one: it names the command that does); real checkpoints come from
the Hugging Face cache (offline first) and are downloaded only when the hub answers. Offline with
nothing cached, one MissingWeightsError says what is missing and how to provide it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.backbones.configs import (  # noqa: F401 - re-exported: the loader's public names
    ARCHES,
    FAMILIES,
    MODEL_CONF_DIR,
    check_model_config,
    head_eps_for,
    load_model_config,
)
from bench.backbones.hub import (
    cached_snapshot,
    has_weights,
    hf_cache_dir,
    hub_reachable,
    resolve_cached_revision,
)
from bench.device import pick_device, pick_dtype
from bench.errors import ConfigError, MissingWeightsError
from bench.paths import models_dir as default_models_dir
from bench.precision import Precision


@dataclass
class Backbone:
    """A loaded model in eval mode with its tokenizer and where it came from (for run records)."""

    name: str
    family: str  # mlm | clm | seq2seq
    arch: str  # bert | roberta | albert | gpt2 | t5
    model: Any
    tokenizer: Any
    hub_id: str
    revision: str | None  # the commit actually loaded when known (resolved from refs/ for branches)
    path: Path | None  # local directory when loaded from `path`
    device: torch.device
    dtype: torch.dtype
    source: str  # path | cache | download | built (tiny model built and loaded from <models_dir>/hub)
    lama_vocab_key: str | None = None
    precision: Precision | None = None  # storage / autocast policy (bench.precision); None: fp32 as stored
    mlm_head_layer_norm_eps: float | None = None  # set by model.mlm_head_layer_norm_eps (None: as loaded)


# the masked-LM head's LayerNorm per arch (transformers' *ForMaskedLM module names)
MLM_HEAD_NORMS = {"albert": "predictions.LayerNorm", "bert": "cls.predictions.transform.LayerNorm",
                  "roberta": "lm_head.layer_norm"}


def set_mlm_head_layer_norm_eps(model: Any, arch: str, eps: float) -> None:
    """Set the masked-LM head LayerNorm's eps (``model.mlm_head_layer_norm_eps``). transformers 3.0.2's
    ``AlbertMLMHead`` built ``nn.LayerNorm(embedding_size)`` (torch's eps 1e-5), today's passes
    ``config.layer_norm_eps`` (1e-12): PET's ALBERT runs had 1e-5 (docs/fewglue.md)."""
    name = MLM_HEAD_NORMS.get(arch)
    norm = None
    if name is not None:
        try:
            norm = model.get_submodule(name)
        except AttributeError:
            norm = None
    if not isinstance(norm, torch.nn.LayerNorm):
        raise ConfigError(f"model.mlm_head_layer_norm_eps={eps}: a {arch} {type(model).__name__} has no masked-LM "
                          f"head LayerNorm ({name or 'unknown for this arch'}); set it to null, or to "
                          "{albert: <eps>} for ALBERT only")
    norm.eps = float(eps)


def _auto_model_class(family: str) -> Any:
    import transformers

    return {"mlm": transformers.AutoModelForMaskedLM, "clm": transformers.AutoModelForCausalLM,
            "seq2seq": transformers.AutoModelForSeq2SeqLM}[family]


def _from_pretrained(family: str, source: str | Path, dtype: torch.dtype, **hub: Any) -> tuple[Any, Any]:
    """Model + tokenizer through the transformers Auto classes (one code path for folders and hub ids)."""
    from transformers import AutoTokenizer

    # transformers passes neither cache_dir nor local_files_only on to its PEFT adapter probe, which
    # then asks the hub for adapter_config.json (with retries) even for a local-only load: pass them.
    adapter = {key: hub[key] for key in ("cache_dir", "local_files_only") if key in hub}
    model = _auto_model_class(family).from_pretrained(str(source), dtype=dtype, adapter_kwargs=adapter, **hub)
    tokenizer = AutoTokenizer.from_pretrained(str(source), **hub)
    return model, tokenizer


def _tiny_alternative(cfg: Mapping[str, Any]) -> str:
    return f"tiny-{cfg['arch']}"


def missing_weights_message(cfg: Mapping[str, Any], cache_dir: Path, why_offline: str, detail: str = "") -> str:
    """The one explanation an offline user gets: what is missing, and the ways to provide it."""
    hub_id, revision, name = cfg["hub_id"], cfg.get("revision") or "main", cfg["name"]
    names = ", ".join([hub_id, *cfg.get("hub_aliases", [])])
    return (
        f"weights for model {name!r} are not available: hub id {hub_id} at revision {revision} is not in the "
        f"Hugging Face cache {cache_dir} (looked for {names}){detail}, model.path is not set, and the hub "
        f"cannot be reached ({why_offline}).\n"
        "Provide them in one of two ways:\n"
        f"  1. once, on a machine with network, download them into the Hugging Face cache:\n"
        f"       huggingface-cli download {hub_id} --revision {revision}\n"
        f"     (or `hf download {hub_id} --revision {revision}`, or any run of this model with network);"
        " HF_HOME / HF_HUB_CACHE choose the cache folder;\n"
        f"  2. point to a local folder holding config.json, the weights and the tokenizer files:\n"
        f"       python -m bench.run ... model={name} model.path=/dir/with/weights\n"
        f"Offline alternative for smoke tests (random weights, built locally): model={_tiny_alternative(cfg)}"
    )


def _load_from_path(cfg: Mapping[str, Any], dtype: torch.dtype) -> tuple[Any, Any]:
    folder = Path(str(cfg["path"])).expanduser()
    if not (folder / "config.json").is_file() or not has_weights(folder):
        raise MissingWeightsError(
            f"model.path={folder} does not hold a model (config.json plus model.safetensors or pytorch_model.bin) "
            f"for {cfg['name']!r}. Fix the path, or drop model.path to use the Hugging Face cache "
            f"({cfg['hub_id']} at revision {cfg.get('revision') or 'main'})."
        )
    return _from_pretrained(cfg["family"], folder, dtype, local_files_only=True)


def _load_built(cfg: Mapping[str, Any], dtype: torch.dtype, models_dir: Path) -> tuple[Any, Any, str]:
    """Tiny models are built here (random weights, seconds); a mini model must be built already: loading
    never trains one (``bench.pretrain.publish.ensure_built`` does, called by the job or ``make mini-models``)."""
    from bench.models.mini import is_mini, require_built
    from bench.models.tiny import ensure_built

    if is_mini(cfg):
        require_built(cfg, models_dir)
    else:
        ensure_built(cfg, models_dir)
    cache_dir = models_dir / "hub"
    revision = resolve_cached_revision(cfg["hub_id"], cfg.get("revision"), cache_dir)
    if revision is None:
        raise MissingWeightsError(f"built model {cfg['hub_id']} has no revision {cfg.get('revision')!r} in {cache_dir}")
    model, tokenizer = _from_pretrained(cfg["family"], cfg["hub_id"], dtype, cache_dir=str(cache_dir),
                                        revision=revision, local_files_only=True)
    return model, tokenizer, revision


def _load_from_hub(cfg: Mapping[str, Any], dtype: torch.dtype) -> tuple[Any, Any, str, str | None, str]:
    """(model, tokenizer, source, revision, hub id used): the cache first, then the hub if it answers."""
    cache_dir = hf_cache_dir()
    revision = cfg.get("revision") or "main"
    detail = ""
    for repo_id in [cfg["hub_id"], *cfg.get("hub_aliases", [])]:
        snapshot = cached_snapshot(repo_id, revision, cache_dir)
        if snapshot is None:
            continue
        if not has_weights(snapshot):
            detail = f" (only a partial download without weights at {snapshot})"
            continue
        model, tokenizer = _from_pretrained(cfg["family"], repo_id, dtype, cache_dir=str(cache_dir),
                                            revision=revision, local_files_only=True)
        return model, tokenizer, "cache", snapshot.name, repo_id
    reachable, why = hub_reachable()
    if not reachable:
        raise MissingWeightsError(missing_weights_message(cfg, cache_dir, why, detail))
    model, tokenizer = _from_pretrained(cfg["family"], cfg["hub_id"], dtype, cache_dir=str(cache_dir),
                                        revision=revision)
    resolved = resolve_cached_revision(cfg["hub_id"], revision, cache_dir) or revision
    return model, tokenizer, "download", resolved, cfg["hub_id"]


def load_backbone(
    cfg: Mapping[str, Any],
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    models_dir: str | Path | None = None,
    precision: Precision | None = None,
) -> Backbone:
    """Load the model a config names, in eval mode on `device` with `dtype` (defaults: bench.device picks).

    With `precision` (bench.precision), the weights are stored in `precision.storage` (fp32 for a
    tuned backbone) and the backbone carries the policy for autocast; `dtype` is then ignored.
    """
    cfg = check_model_config(cfg)
    if cfg.get("not_runnable"):
        raise ConfigError(f"model {cfg['name']!r} is not runnable here: {cfg['not_runnable']}")
    target = device if isinstance(device, torch.device) else pick_device(device)
    if precision is not None:
        torch_dtype = precision.storage
    else:
        torch_dtype = dtype if isinstance(dtype, torch.dtype) else pick_dtype(target, dtype)
    hub_id, revision, path = cfg["hub_id"], cfg.get("revision"), None
    if cfg.get("path"):
        model, tokenizer = _load_from_path(cfg, torch_dtype)
        path, source = Path(str(cfg["path"])).expanduser(), "path"
    elif cfg.get("build"):
        folder = Path(models_dir) if models_dir else default_models_dir()
        model, tokenizer, revision = _load_built(cfg, torch_dtype, folder)
        source = "built"
    else:
        model, tokenizer, source, revision, hub_id = _load_from_hub(cfg, torch_dtype)
    model.eval()
    model.to(device=target, dtype=torch_dtype)
    head_eps = head_eps_for(cfg)
    if head_eps is not None:
        set_mlm_head_layer_norm_eps(model, cfg["arch"], head_eps)
    return Backbone(name=cfg["name"], family=cfg["family"], arch=cfg["arch"], model=model, tokenizer=tokenizer,
                    hub_id=hub_id, revision=revision, path=path, device=target, dtype=torch_dtype, source=source,
                    lama_vocab_key=cfg.get("lama_vocab_key"), precision=precision, mlm_head_layer_norm_eps=head_eps)


def load_tokenizer(cfg: Mapping[str, Any], models_dir: str | Path | None = None) -> Any | None:
    """The model's tokenizer without its weights (for checks before loading), or None when it cannot
    be had cheaply (a mini model not built yet, a hub model not cached but downloadable). Offline with
    nothing cached, the same MissingWeightsError as :func:`load_backbone`, before any weights load."""
    from transformers import AutoTokenizer

    cfg = check_model_config(cfg)
    if cfg.get("path"):
        folder = Path(str(cfg["path"])).expanduser()
        if not (folder / "config.json").is_file() or not has_weights(folder):
            _load_from_path(cfg, torch.float32)  # raises the MissingWeightsError naming the folder
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if cfg.get("build"):
        from bench.models.mini import fingerprint, is_mini
        from bench.models.tiny import current_build, ensure_built

        folder = Path(models_dir) if models_dir else default_models_dir()
        if is_mini(cfg):  # pretrained here (minutes): checked after the job builds it, not built for a check
            found = current_build(cfg, folder)
            if found is None or found[1].get("fingerprint") != fingerprint(cfg):
                return None
            revision = found[0]
        else:
            revision = ensure_built(cfg, folder)  # tiny models: random weights, seconds
        return AutoTokenizer.from_pretrained(cfg["hub_id"], cache_dir=str(folder / "hub"), revision=revision,
                                             local_files_only=True)
    cache_dir, revision = hf_cache_dir(), cfg.get("revision") or "main"
    for repo_id in [cfg["hub_id"], *cfg.get("hub_aliases", [])]:
        snapshot = cached_snapshot(repo_id, revision, cache_dir)
        if snapshot is not None and has_weights(snapshot):
            return AutoTokenizer.from_pretrained(repo_id, cache_dir=str(cache_dir), revision=revision,
                                                 local_files_only=True)
    reachable, why = hub_reachable()
    if not reachable:
        raise MissingWeightsError(missing_weights_message(cfg, cache_dir, why))
    return None
