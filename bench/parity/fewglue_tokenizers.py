"""The tiny models' tokenizers as the files the references' slow tokenizers read (transformers 3.0.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.paths import data_dir

MODELS = {"tiny-albert": "albert", "tiny-roberta": "roberta", "tiny-bert": "bert"}  # suite model -> model_type


def export_tokenizer(model: str, folder: Path) -> dict[str, Any]:
    """Write the tiny model's tokenizer as the files its slow twin reads; returns their paths."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_snapshot(model))
    spec = json.loads(tok.backend_tokenizer.to_str())
    folder.mkdir(parents=True, exist_ok=True)
    kind = MODELS[model]
    if kind == "albert":
        path = folder / "spiece.model"
        path.write_bytes(_sentencepiece_model(spec))
        return {"folder": str(folder)}
    if kind == "roberta":
        vocab, merges = folder / "vocab.json", folder / "merges.txt"
        vocab.write_text(json.dumps(spec["model"]["vocab"], ensure_ascii=False), encoding="utf-8")
        lines = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
        merges.write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")
        return {"folder": str(folder)}
    vocab = folder / "vocab.txt"
    by_id = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab.write_text("".join(f"{t}\n" for t, _ in by_id), encoding="utf-8")
    return {"folder": str(folder), "lowercase": bool(spec["normalizer"].get("lowercase"))}


def _sentencepiece_model(spec: dict[str, Any]) -> bytes:
    """A SentencePiece unigram model with the fast tokenizer's pieces and scores.

    The fast tokenizer's normalizer (quotes, NFKD, accents, lower case) is what ALBERT's slow
    ``preprocess_text`` does in Python, so the exported model normalises nothing itself.
    """
    from sentencepiece import sentencepiece_model_pb2 as sp

    model = sp.ModelProto()
    model.trainer_spec.model_type = sp.TrainerSpec.UNIGRAM
    model.trainer_spec.unk_id = int(spec["model"]["unk_id"])
    model.trainer_spec.vocab_size = len(spec["model"]["vocab"])
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = True
    model.normalizer_spec.escape_whitespaces = True
    special = {t["content"] for t in spec["added_tokens"] if t.get("special")}
    for index, (piece, score) in enumerate(spec["model"]["vocab"]):
        entry = model.pieces.add()
        entry.piece, entry.score = piece, float(score)
        if index == model.trainer_spec.unk_id:
            entry.type = sp.ModelProto.SentencePiece.UNKNOWN
        elif piece in special:
            entry.type = sp.ModelProto.SentencePiece.CONTROL
    return model.SerializeToString()


def _snapshot(model: str) -> Path:
    found = sorted((data_dir() / "models" / "hub" / f"models--bench-local--{model}" / "snapshots").glob("*/"))
    if not found:
        from bench.errors import DataError

        raise DataError(f"{model} is not built", file=data_dir() / "models" / "hub",
                        fix=f"build it: .venv/bin/python -m bench.run task=cb model={model} method=manual")
    return found[-1]
