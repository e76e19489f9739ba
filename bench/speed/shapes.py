"""The papers' model shapes, built with random weights (speed does not depend on the weights).

Each shape is the architecture part of the model's Hugging Face ``config.json`` at the hub id of
``conf/model/<name>.yaml`` (values as published there; no download is needed to build them).
Tokenizers: LAMA queries must be real facts rendered with the suite's templates, so each shape
borrows the tokenizer of the suite's tiny model of the same family (``tiny-bert``: cased
WordPiece holding every LAMA-34k BERT word, 27,473 pieces; ``tiny-roberta`` / ``tiny-gpt2``: the
real GPT-2 byte-level BPE). The embedding matrix keeps the real vocabulary size, so the LM head
costs what it costs in the paper's model; query lengths differ from the real tokenizer's by a
piece here and there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bench.errors import ConfigError

# name -> (transformers config class, its keyword arguments, hub config the numbers are from)
SHAPES: dict[str, tuple[str, dict[str, Any], str]] = {
    "bert-base-cased": ("BertConfig", {"vocab_size": 28996, "hidden_size": 768, "num_hidden_layers": 12,
                                       "num_attention_heads": 12, "intermediate_size": 3072,
                                       "max_position_embeddings": 512, "type_vocab_size": 2},
                        "google-bert/bert-base-cased config.json"),
    "bert-large-cased": ("BertConfig", {"vocab_size": 28996, "hidden_size": 1024, "num_hidden_layers": 24,
                                        "num_attention_heads": 16, "intermediate_size": 4096,
                                        "max_position_embeddings": 512, "type_vocab_size": 2},
                         "google-bert/bert-large-cased config.json"),
    "roberta-base": ("RobertaConfig", {"vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12,
                                       "num_attention_heads": 12, "intermediate_size": 3072,
                                       "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1,
                                       "bos_token_id": 0, "eos_token_id": 2},
                     "FacebookAI/roberta-base config.json"),
    "roberta-large": ("RobertaConfig", {"vocab_size": 50265, "hidden_size": 1024, "num_hidden_layers": 24,
                                        "num_attention_heads": 16, "intermediate_size": 4096,
                                        "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1,
                                        "bos_token_id": 0, "eos_token_id": 2},
                      "FacebookAI/roberta-large config.json"),
    "gpt2-medium": ("GPT2Config", {"vocab_size": 50257, "n_embd": 1024, "n_layer": 24, "n_head": 16,
                                   "n_positions": 1024, "bos_token_id": 50256, "eos_token_id": 50256},
                    "openai-community/gpt2-medium config.json"),
    "gpt2-xl": ("GPT2Config", {"vocab_size": 50257, "n_embd": 1600, "n_layer": 48, "n_head": 25,
                               "n_positions": 1024, "bos_token_id": 50256, "eos_token_id": 50256},
                "openai-community/gpt2-xl config.json"),
    "albert-xxlarge-v2": ("AlbertConfig", {"vocab_size": 30000, "embedding_size": 128, "hidden_size": 4096,
                                           "num_hidden_layers": 12, "num_attention_heads": 64,
                                           "intermediate_size": 16384, "hidden_act": "gelu_new",
                                           "max_position_embeddings": 512, "type_vocab_size": 2,
                                           "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3},
                          "albert/albert-xxlarge-v2 config.json"),
    # the suite's own mini BERT (bench.pretrain.model.make_model); vocab = the borrowed tiny-bert tokenizer's size
    # (cased WordPiece holding every LAMA-34k word; mini-bert's own: 8,000 learned pieces + the same forced words)
    "mini-bert": ("BertConfig", {"vocab_size": 27473, "hidden_size": 192, "num_hidden_layers": 3,
                                 "num_attention_heads": 3, "intermediate_size": 768, "max_position_embeddings": 128,
                                 "type_vocab_size": 2, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                                 "pad_token_id": 0},
                  "conf/pretrain/mini-bert.yaml (model section; dropout 0.0)"),
}
MODEL_CLASS = {"BertConfig": "BertForMaskedLM", "RobertaConfig": "RobertaForMaskedLM",
               "GPT2Config": "GPT2LMHeadModel", "AlbertConfig": "AlbertForMaskedLM"}
TOKENIZER_OF = {"bert": "tiny-bert", "roberta": "tiny-roberta", "gpt2": "tiny-gpt2"}


@dataclass
class Shape:
    """One paper model: its conf/model entry and the architecture numbers."""

    name: str
    family: str
    arch: str
    lama_vocab_key: str
    config_class: str
    config: dict[str, Any]
    source: str

    @property
    def hidden(self) -> int:
        return int(self.config.get("hidden_size") or self.config["n_embd"])

    @property
    def layers(self) -> int:
        return int(self.config.get("num_hidden_layers") or self.config["n_layer"])

    @property
    def inner(self) -> int:
        return int(self.config.get("intermediate_size") or 4 * self.hidden)

    @property
    def vocab(self) -> int:
        return int(self.config["vocab_size"])

    @property
    def embedding(self) -> int:
        return int(self.config.get("embedding_size") or self.hidden)


def shape(name: str) -> Shape:
    from bench.backbones.loading import load_model_config

    if name not in SHAPES:
        raise ConfigError(f"no paper shape for {name!r}; bench.speed.shapes.SHAPES has {', '.join(SHAPES)}")
    cfg = load_model_config(name)
    config_class, config, source = SHAPES[name]
    return Shape(name, cfg["family"], cfg["arch"], cfg["lama_vocab_key"], config_class, dict(config), source)


def build_model(spec: Shape, device: torch.device, attn: str = "sdpa", seed: int = 0) -> torch.nn.Module:
    """A random-weight model of ``spec`` in eval mode on ``device`` (float32)."""
    import transformers as tf

    config = getattr(tf, spec.config_class)(**spec.config, tie_word_embeddings=True)
    config._attn_implementation = attn
    torch.manual_seed(seed)
    with torch.device(device):
        model = getattr(tf, MODEL_CLASS[spec.config_class])(config)
    return model.eval()


def tokenizer_for(spec: Shape):
    """The tokenizer of the suite's tiny model of this family (its built snapshot; built first if absent)."""
    from transformers import AutoTokenizer

    from bench.backbones.loading import load_backbone, load_model_config
    from bench.models.tiny import repo_folder
    from bench.paths import models_dir

    tiny = TOKENIZER_OF.get(spec.arch)
    if tiny is None:
        raise ConfigError(f"{spec.name}: no tiny tokenizer for arch {spec.arch!r} (LAMA runs on bert, roberta, gpt2)")
    cfg = load_model_config(tiny)
    repo = repo_folder(cfg["hub_id"], models_dir() / "hub")
    ref = repo / "refs" / "main"
    snapshot = repo / "snapshots" / ref.read_text().strip() if ref.is_file() else None
    if snapshot is not None and (snapshot / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(snapshot))
    else:
        tokenizer = load_backbone(cfg, device="cpu", dtype="fp32").tokenizer
    if len(tokenizer) > spec.vocab:
        raise ConfigError(f"{tiny}'s tokenizer has {len(tokenizer)} entries, more than {spec.name}'s {spec.vocab}")
    return tokenizer


def backbone_for(spec: Shape, device: torch.device, attn: str = "sdpa"):
    """A :class:`bench.backbones.loading.Backbone` around the random model and the borrowed tokenizer."""
    from bench.backbones.loading import Backbone

    model = build_model(spec, device, attn)
    return Backbone(spec.name, spec.family, spec.arch, model, tokenizer_for(spec), f"random:{spec.source}", None,
                    None, device, torch.float32, "random", spec.lama_vocab_key)


def matmul_flops_per_token(spec: Shape) -> int:
    """Forward FLOPs of the weight matmuls per token of the transformer body (2 x multiply-adds)."""
    h, inner = spec.hidden, spec.inner
    per_layer = 4 * h * h + 2 * h * inner  # Q, K, V, output projection; two feed-forward matrices
    embed_proj = spec.embedding * h if spec.embedding != h else 0  # ALBERT's E -> H projection
    return 2 * (spec.layers * per_layer + embed_proj)


def attention_flops(spec: Shape, lengths: list[int], causal: bool = False) -> int:
    """Forward FLOPs of QK^T and AV over sequences of these lengths (all heads)."""
    return sum(2 * 2 * n * n * spec.hidden * spec.layers for n in lengths)


def head_flops_per_target(spec: Shape) -> int:
    """LM head FLOPs per scored position: the transform (H x E) then the tied decoder (E x vocab)."""
    e = spec.embedding
    transform = spec.hidden * e if spec.arch in ("bert", "roberta", "albert") else 0
    return 2 * (transform + e * spec.vocab)
