"""Mini model architectures (standard Hugging Face classes) and their loss at selected positions only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.pretrain.data import LossBatch


def make_model(arch: str, spec: Mapping[str, Any], tokenizer) -> torch.nn.Module:
    """BertForMaskedLM or GPT2LMHeadModel of the recipe's size; input and output embeddings tied."""
    import transformers as tf

    hidden, layers, heads = int(spec["hidden_size"]), int(spec["num_layers"]), int(spec["num_heads"])
    inner, positions, vocab = int(spec["intermediate_size"]), int(spec["max_positions"]), len(tokenizer)
    dropout = float(spec.get("dropout", 0.1))
    if arch == "bert":
        config = tf.BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                               num_attention_heads=heads, intermediate_size=inner, max_position_embeddings=positions,
                               hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                               pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
        return tf.BertForMaskedLM(config)
    if arch == "gpt2":
        config = tf.GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=hidden, n_layer=layers, n_head=heads,
                               n_inner=inner, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                               bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                               tie_word_embeddings=True)
        return tf.GPT2LMHeadModel(config)
    raise ConfigError(f"mini models exist for arch bert or gpt2, not {arch!r}")


def _parts(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    name = type(model).__name__
    if name == "BertForMaskedLM":
        return model.bert, model.cls
    if name == "GPT2LMHeadModel":
        return model.transformer, model.lm_head
    raise ConfigError(f"no selected-position loss for {name}")


def selected_logits(model: torch.nn.Module, batch: LossBatch) -> torch.Tensor:
    """Output-layer logits at the batch's selected positions only: (n_selected, vocab)."""
    body, head = _parts(model)
    hidden = body(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    return head(hidden[batch.rows, batch.cols])


def losses(model: torch.nn.Module, batch: LossBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy over selected positions (the loss to minimise) and its salient/other parts."""
    logits = selected_logits(model, batch).float()
    each = F.cross_entropy(logits, batch.targets, reduction="none")
    parts: dict[str, float] = {}
    with torch.no_grad():
        for key, where in (("salient", batch.salient), ("other", ~batch.salient)):
            if where.any():
                parts[key] = float(each[where].mean())
    return each.mean(), parts
