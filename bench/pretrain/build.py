"""One mini-model build: recipe -> tokenizer -> corpus -> pretraining -> probe -> saved snapshot + record.

Recipes live in ``conf/pretrain/<name>.yaml``. Tokenizers are cached under
``<models_dir>/.cache/tokenizers/<hash>`` (the hash covers the tokenizer spec and its inputs), so
trying recipes does not retrain them; builds are deterministic, so the cache changes nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.paths import models_dir
from bench.pretrain import bpe
from bench.pretrain.corpus import from_subject, read_evidences, select
from bench.pretrain.data import crop_after_object, encode
from bench.pretrain.recipe import (  # noqa: F401 - re-exported
    BUILDER_VERSION,
    RECIPE_DIR,
    _evidence_path,
    input_fingerprint,
    load_recipe,
    recipe_fingerprint,
)
from bench.pretrain.train import TrainResult, pretrain


def _train_tokenizer(arch: str, spec: Mapping[str, Any], max_length: int) -> tuple[Any, dict[str, Any]]:
    from bench.models.tokenizers import build_tokenizer, lama_vocab, training_sentences

    if arch == "bert":  # the tiny models' deterministic cased WordPiece, trained on the evidence sentences
        return build_tokenizer({**spec, "kind": "wordpiece"}, max_length)
    texts = training_sentences(int(spec["corpus_sentences"]))
    forced = [t for t in lama_vocab(spec["force_lama_vocab"]) if t.startswith("Ġ")]
    return bpe.build_tokenizer(texts, int(spec["vocab_size"]), forced, int(spec.get("min_frequency", 2)), max_length)


def tokenizer_for(recipe: Mapping[str, Any], cache: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """The recipe's tokenizer, from the cache when an identical spec was trained before."""
    from transformers import AutoTokenizer

    arch, spec = recipe["arch"], recipe["tokenizer"]
    max_length = int(recipe["model"]["max_positions"])
    key = hashlib.sha256(json.dumps({"arch": arch, "spec": spec, "max_length": max_length,
                                     "inputs": input_fingerprint(recipe), "builder": BUILDER_VERSION},
                                    sort_keys=True).encode()).hexdigest()[:20]
    folder = (cache or models_dir() / ".cache" / "tokenizers") / key
    info_file = folder / "bench_tokenizer.json"
    if info_file.is_file():
        return AutoTokenizer.from_pretrained(str(folder)), json.loads(info_file.read_text(encoding="utf-8"))
    started = time.perf_counter()
    tokenizer, info = _train_tokenizer(arch, spec, max_length)
    info = {**info, "vocab_size": len(tokenizer), "seconds": round(time.perf_counter() - started, 1)}
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    info_file.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return AutoTokenizer.from_pretrained(str(folder)), info


@dataclass
class Built:
    recipe: dict[str, Any]
    tokenizer: Any
    result: TrainResult
    record: dict[str, Any] = field(default_factory=dict)


def run_recipe(recipe: Mapping[str, Any], progress: bool = True, probe_splits: Sequence[str] | None = None) -> Built:
    """Train the recipe's model in memory; the record holds times, counts, losses and the LAMA probe."""
    from bench.provenance import git_state

    recipe = copy.deepcopy(dict(recipe))
    started = time.perf_counter()
    arch = recipe["arch"]
    tokenizer, tok_info = tokenizer_for(recipe)
    corpus_spec = recipe["corpus"]
    relations = corpus_spec.get("relations")
    relations = None if relations in (None, "all") else list(relations)
    selection = select(read_evidences(_evidence_path(), relations), corpus_spec.get("cap_test"),
                       corpus_spec.get("cap_other"), float(corpus_spec.get("heldout_fraction", 0.01)),
                       corpus_spec.get("prefer_subject", "any"))
    if corpus_spec.get("start_at_subject"):
        selection.train = [from_subject(s) for s in selection.train]
        selection.heldout = [from_subject(s) for s in selection.heldout]
    max_length = int(corpus_spec.get("max_length", recipe["model"]["max_positions"]))
    train_items = encode(selection.train, tokenizer, max_length, specials=arch == "bert")
    heldout_items = encode(selection.heldout, tokenizer, max_length, specials=arch == "bert")
    if arch == "gpt2" and float(recipe["objective"]["random_rate"]) == 0.0:
        train_items = crop_after_object(train_items)  # same loss, fewer tokens; held-out lines stay whole
    prepared = time.perf_counter() - started
    print(f"[bench] {recipe['name']}: {len(train_items):,} training lines, {len(heldout_items):,} held out, "
          f"vocab {len(tokenizer):,}, prepared in {prepared:.0f}s", flush=True)
    result = pretrain(arch, recipe, tokenizer, train_items, heldout_items, progress=progress)
    record: dict[str, Any] = {
        "name": recipe["name"], "arch": arch, "recipe": recipe, "fingerprint": recipe_fingerprint(recipe),
        "git": git_state(), "tokenizer": tok_info,
        "corpus": {**selection.counts, "encoded_train": len(train_items), "encoded_heldout": len(heldout_items),
                   "train_tokens": sum(len(it.ids) for it in train_items), "source": str(_evidence_path())},
        "parameters": sum(p.numel() for p in result.model.parameters()),
        "bf16_autocast": result.bf16, "steps": result.steps,
        "seconds": {"prepare": round(prepared, 1), "train": round(result.seconds, 1)},
        "final_train_loss": result.log[-1] if result.log else None, "heldout_loss": result.heldout,
        "loss_log": result.log,
    }
    splits = probe_splits if probe_splits is not None else recipe.get("probe", {}).get("splits", ["test"])
    if splits:
        from bench.pretrain.probe import headline, probe

        probe_started = time.perf_counter()
        record["lama"] = probe(result.model, tokenizer, arch, recipe["lama_vocab_key"],
                               recipe.get("probe", {}).get("variant", "lama34k"),
                               relations or "all", splits)
        record["seconds"]["probe"] = round(time.perf_counter() - probe_started, 1)
        for split in splits:
            print(f"[bench] {recipe['name']}: {headline(record['lama'], split)}", flush=True)
    record["seconds"]["total"] = round(time.perf_counter() - started, 1)
    return Built(recipe, tokenizer, result, record)
