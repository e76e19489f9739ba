"""Tiny random-weight checkpoints, built deterministically from a model YAML's `build:` recipe.

They are written in Hugging Face hub-cache layout under <models_dir>/hub so that loading them goes
through exactly the code path real checkpoints use:

    <models_dir>/hub/models--bench-local--tiny-bert/refs/main        -> <revision>
    <models_dir>/hub/models--bench-local--tiny-bert/snapshots/<revision>/{config.json,model.safetensors,...}

revision = first 40 hex digits of a sha256 over the saved model and tokenizer files (same recipe and
inputs => same files => same revision). `bench_build.json` beside them records the recipe and inputs
and is left out of that hash.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.errors import ConfigError
from bench.io_utils import atomic_write_json, atomic_write_text, sha256_file
from bench.models import tokenizers as tokenizers_module
from bench.models.tokenizers import build_tokenizer, evidence_source, input_fingerprint
from bench.paths import models_dir as default_models_dir

BUILD_INFO = "bench_build.json"
ARCHES = ("bert", "roberta", "albert", "gpt2", "t5")


@dataclass
class BuildResult:
    """What a build produced: where, which revision, and the in-memory model/tokenizer it saved."""

    name: str
    revision: str
    snapshot: Path
    info: dict[str, Any]
    model: Any = None
    tokenizer: Any = None


def repo_folder(hub_id: str, cache_dir: Path) -> Path:
    """The hub-cache folder of a repo id: <cache>/models--<org>--<name>."""
    return Path(cache_dir) / ("models--" + hub_id.replace("/", "--"))


def _versions() -> dict[str, str]:
    import sentencepiece
    import tokenizers
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "sentencepiece": sentencepiece.__version__}


def fingerprint(cfg: Mapping[str, Any]) -> str:
    """Hash of the recipe, the inputs it reads, the builder code and library versions: a change means rebuild."""
    code = [sha256_file(Path(__file__)), sha256_file(Path(tokenizers_module.__file__))]
    recipe = {"arch": cfg["arch"], "build": cfg["build"], "builder": code, "versions": _versions(),
              "inputs": input_fingerprint(cfg["build"]["tokenizer"])}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()


def _make_model(arch: str, recipe: Mapping[str, Any], tokenizer: Any) -> torch.nn.Module:
    """Random-weight model of the real architecture, shrunk to the recipe's sizes; embeddings tied."""
    import transformers as tf

    hidden, layers, heads = int(recipe["hidden_size"]), int(recipe["num_layers"]), int(recipe["num_heads"])
    inner, positions, vocab = int(recipe["intermediate_size"]), int(recipe["max_positions"]), len(tokenizer)
    common = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": inner, "vocab_size": vocab, "tie_word_embeddings": True}
    if arch == "bert":
        config = tf.BertConfig(max_position_embeddings=positions, pad_token_id=tokenizer.pad_token_id, **common)
        return tf.BertForMaskedLM(config)
    if arch == "roberta":  # RoBERTa offsets positions by padding_idx + 1
        config = tf.RobertaConfig(max_position_embeddings=positions + 2, type_vocab_size=1, pad_token_id=1,
                                  bos_token_id=0, eos_token_id=2, **common)
        return tf.RobertaForMaskedLM(config)
    if arch == "albert":
        config = tf.AlbertConfig(embedding_size=int(recipe.get("embedding_size", hidden)),
                                 max_position_embeddings=positions, pad_token_id=0, bos_token_id=2,
                                 eos_token_id=3, **common)
        return tf.AlbertForMaskedLM(config)
    if arch == "gpt2":
        config = tf.GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=hidden, n_layer=layers, n_head=heads,
                               n_inner=inner, bos_token_id=tokenizer.bos_token_id,
                               eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
        return tf.GPT2LMHeadModel(config)
    if arch == "t5":
        config = tf.T5Config(vocab_size=vocab, d_model=hidden, d_kv=hidden // heads, d_ff=inner, num_layers=layers,
                             num_decoder_layers=layers, num_heads=heads, feed_forward_proj="relu",
                             tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
        return tf.T5ForConditionalGeneration(config)
    raise ConfigError(f"tiny models exist for arch in {ARCHES}, not {arch!r}")


def revision_of(folder: Path) -> str:
    """First 40 hex of sha256 over (relative name, file sha256) of every file except bench_build.json."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != BUILD_INFO):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()[:40]


def publish_snapshot(repo: Path, model, tokenizer, describe: Callable[[Path, str], dict[str, Any]]
                     ) -> tuple[str, Path, dict[str, Any]]:
    """Save model + tokenizer as snapshots/<revision> (staged, then renamed) and point refs/main at it.

    `describe(staging, revision)` returns the build info (written as bench_build.json) and may write
    further unhashed files; the revision hashes only what the model and tokenizer saved.
    """
    (repo / "snapshots").mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=repo))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        revision = revision_of(staging)
        info = describe(staging, revision)
        atomic_write_json(staging / BUILD_INFO, info)
        snapshot = repo / "snapshots" / revision
        if snapshot.exists():
            shutil.rmtree(snapshot)
        staging.rename(snapshot)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (repo / "refs").mkdir(exist_ok=True)
    atomic_write_text(repo / "refs" / "main", revision)
    return revision, snapshot, info


def build_tiny(cfg: Mapping[str, Any], models_dir: str | Path | None = None, keep_in_memory: bool = False) -> BuildResult:
    """Build the tiny model of `cfg` into <models_dir>/hub (always rebuilds) and point refs/main at it."""
    if not cfg.get("build"):
        raise ConfigError(f"model {cfg.get('name')!r} has no `build:` recipe; only tiny/mini models are built")
    recipe, arch, name = cfg["build"], cfg["arch"], cfg["name"]
    cache_dir = Path(models_dir or default_models_dir()) / "hub"
    repo = repo_folder(cfg["hub_id"], cache_dir)
    started = time.perf_counter()
    print(f"[bench] building tiny model {name} ({arch}) into {repo} ...", flush=True)
    tokenizer, tok_info = build_tokenizer(recipe["tokenizer"], int(recipe["max_positions"]))
    torch.manual_seed(int(recipe["seed"]))
    model = _make_model(arch, recipe, tokenizer).eval()

    def describe(staging: Path, revision: str) -> dict[str, Any]:
        return {"name": name, "hub_id": cfg["hub_id"], "revision": revision, "fingerprint": fingerprint(cfg),
                "recipe": recipe, "tokenizer": tok_info, "versions": _versions(),
                "corpus": str(evidence_source()) if recipe["tokenizer"]["kind"] in ("wordpiece", "unigram") else None,
                "parameters": sum(p.numel() for p in model.parameters())}

    revision, snapshot, info = publish_snapshot(repo, model, tokenizer, describe)
    seconds = time.perf_counter() - started
    share = tok_info.get("lama_single_token_share")
    extra = f", LAMA single-token share {share:.3f}" if share is not None else ""
    print(f"[bench] built {name}: revision {revision}, vocab {tok_info['vocab_size']}{extra}, "
          f"{info['parameters']:,} parameters, {seconds:.1f}s -> {snapshot}", flush=True)
    info["seconds"] = seconds
    return BuildResult(name, revision, snapshot, info, model if keep_in_memory else None,
                       tokenizer if keep_in_memory else None)


def is_random_build(cfg: Mapping[str, Any]) -> bool:
    """Whether the suite builds this model itself with random weights (the tiny models)."""
    build = cfg.get("build")
    return isinstance(build, Mapping) and build.get("kind", "random") == "random"


def current_build(cfg: Mapping[str, Any], models_dir: str | Path | None = None) -> tuple[str, dict[str, Any]] | None:
    """(revision, build info) of the snapshot refs/main points at, or None when there is none."""
    repo = repo_folder(cfg["hub_id"], Path(models_dir or default_models_dir()) / "hub")
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    revision = ref.read_text(encoding="utf-8").strip()
    info_file = repo / "snapshots" / revision / BUILD_INFO
    if not info_file.is_file():
        return None
    return revision, json.loads(info_file.read_text(encoding="utf-8"))


def ensure_built(cfg: Mapping[str, Any], models_dir: str | Path | None = None) -> str:
    """Return the revision of the tiny model; build it first when absent or when its recipe/inputs changed."""
    found = current_build(cfg, models_dir)
    if found is not None and found[1].get("fingerprint") == fingerprint(cfg):
        return found[0]
    if found is not None:
        print(f"[bench] recipe, inputs or library versions of {cfg['name']} changed since revision {found[0]}; "
              "rebuilding", flush=True)
    return build_tiny(cfg, models_dir).revision


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.models.tiny all|NAME...`: build (or reuse) tiny models and print what they are."""
    import argparse

    from bench.backbones.configs import MODEL_CONF_DIR, load_model_config

    parser = argparse.ArgumentParser(prog="python -m bench.models.tiny", description=main.__doc__)
    parser.add_argument("names", nargs="+", help="model config names (conf/model/*.yaml with a build: recipe) or all")
    parser.add_argument("--models-dir", default=None, help="default: bench.paths.models_dir() (data/models)")
    args = parser.parse_args(argv)
    names = args.names
    if names == ["all"]:
        names = [p.stem for p in sorted(MODEL_CONF_DIR.glob("*.yaml")) if is_random_build(load_model_config(p.stem))]
    for name in names:
        cfg = load_model_config(name)
        revision = ensure_built(cfg, args.models_dir)
        info = current_build(cfg, args.models_dir)[1]  # type: ignore[index]
        share = info["tokenizer"].get("lama_single_token_share")
        print(f"{name}: revision {revision}, vocab {info['tokenizer']['vocab_size']}, "
              f"LAMA single-token share {share if share is None else round(share, 4)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
