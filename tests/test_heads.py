"""Classifier head and pooling on tiny random backbones, plus the ScoringBatch forward-patch hook."""

import pytest
import torch
import transformers as tf

from bench.backbones.heads import ClassifierHead, last_token_index, pooled_hidden, resolve_pool
from bench.backbones.scoring import ScoringBatch, pad_batch, target_logits
from bench.errors import ConfigError

VOCAB = 60


def tiny(arch: str):
    """Small random model of the real class (2 layers, width 32); eval mode."""
    torch.manual_seed(0)
    common = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 37}
    if arch == "bert":
        return tf.BertForMaskedLM(tf.BertConfig(max_position_embeddings=64, pad_token_id=0, **common)).eval()
    if arch == "roberta":
        return tf.RobertaForMaskedLM(tf.RobertaConfig(max_position_embeddings=66, pad_token_id=1, type_vocab_size=1,
                                                      **common)).eval()
    if arch == "albert":
        return tf.AlbertForMaskedLM(tf.AlbertConfig(embedding_size=16, max_position_embeddings=64, pad_token_id=0,
                                                    **common)).eval()
    if arch == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                                n_inner=37)).eval()
    return tf.T5ForConditionalGeneration(tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=37, num_layers=2,
                                                     num_decoder_layers=3, num_heads=2, pad_token_id=0,
                                                     decoder_start_token_id=0)).eval()


ROWS = [[5, 9, 11, 7, 3], [5, 12, 3]]  # right-padded to width 5


def batch_for(pad_id: int, decoder: bool = False) -> ScoringBatch:
    dec = [[0, 4], [0, 4]] if decoder else None  # seq2seq targets sit in the decoder
    return pad_batch(ROWS, [[1], [1]] if decoder else [[1], [2]], pad_id, decoder_sequences=dec)


@pytest.mark.parametrize("arch", ["bert", "roberta", "albert"])
def test_first_token_pooling_is_the_cls_hidden_state(arch):
    model = tiny(arch)
    pad = model.config.pad_token_id
    batch = batch_for(pad)
    with torch.no_grad():
        pooled = pooled_hidden(model, batch)
        full = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    assert pooled.shape == (2, 32)
    assert torch.allclose(pooled, full.hidden_states[-1][:, 0], atol=1e-6)


def test_gpt2_pools_the_last_real_token_of_each_row():
    model = tiny("gpt2")
    batch = batch_for(0)
    with torch.no_grad():
        pooled = pooled_hidden(model, batch)
        # independent: each row alone, unpadded; its last position
        alone = [model.transformer(input_ids=torch.tensor([row])).last_hidden_state[0, -1] for row in ROWS]
    assert torch.allclose(pooled, torch.stack(alone), atol=1e-5)


def test_last_token_index_left_and_right_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(mask).tolist() == [2, 4, 4]


def test_t5_decoder_start_and_encoder_mean_pooling():
    model = tiny("t5")
    batch = batch_for(0, decoder=True)
    with torch.no_grad():
        start = pooled_hidden(model, batch)
        mean = pooled_hidden(model, batch, pool="mean")
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    decoder_input_ids=torch.zeros(2, 1, dtype=torch.long), output_hidden_states=True)
    assert torch.allclose(start, out.decoder_hidden_states[-1][:, 0], atol=1e-6)
    enc = out.encoder_last_hidden_state
    by_hand = torch.stack([enc[0, :5].mean(0), enc[1, :3].mean(0)])
    assert torch.allclose(mean, by_hand, atol=1e-6)


def test_pool_resolution_and_errors():
    assert resolve_pool(tiny("gpt2")) == "last"
    assert resolve_pool(tiny("t5")) == "decoder_start"
    with pytest.raises(ConfigError, match="decoder_start"):
        resolve_pool(tiny("bert"), "decoder_start")
    with pytest.raises(ConfigError, match="pool must be"):
        resolve_pool(tiny("bert"), "cls")
    with pytest.raises(ConfigError, match="not defined for encoder-decoder"):
        pooled_hidden(tiny("t5"), batch_for(0, decoder=True), pool="first")


@pytest.mark.parametrize("hidden_layer", [False, True])
def test_classifier_head_math_and_parameter_count(hidden_layer):
    torch.manual_seed(1)
    head = ClassifierHead(32, 3, dropout=0.5, hidden_layer=hidden_layer).eval()
    x = torch.randn(4, 32)
    w, b = head.classifier.weight, head.classifier.bias
    inner = torch.tanh(x @ head.dense.weight.T + head.dense.bias) if hidden_layer else x
    assert torch.allclose(head(x), inner @ w.T + b, atol=1e-6)
    expected = 32 * 3 + 3 + (32 * 32 + 32 if hidden_layer else 0)
    assert sum(p.numel() for p in head.parameters()) == expected
    head.train()
    assert not torch.allclose(head(x), head(x))  # dropout is live in train mode
    with pytest.raises(ConfigError):
        ClassifierHead(32, 0)


# ScoringBatch.forward_patch ---------------------------------------------------------------------

class Recorder:
    """A patch that changes nothing and records which parts it was asked for."""

    def __init__(self):
        self.parts = []

    def __call__(self, part, kwargs):
        self.parts.append((part, sorted(kwargs)))
        return kwargs


@pytest.mark.parametrize("arch", ["bert", "gpt2", "t5"])
def test_identity_patch_leaves_logits_unchanged_and_sees_each_call(arch):
    model = tiny(arch)
    batch = batch_for(model.config.pad_token_id or 0, decoder=arch == "t5")
    with torch.no_grad():
        plain = target_logits(model, batch)
        recorder = Recorder()
        batch.forward_patch = recorder
        patched = target_logits(model, batch)
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if arch == "t5":
            kwargs["decoder_input_ids"] = batch.decoder_input_ids
        full = model(**kwargs).logits[batch.target_rows, batch.target_cols]
    assert torch.equal(plain, patched)
    assert torch.allclose(plain, full, atol=1e-5)
    if arch == "t5":
        assert recorder.parts == [("encoder", ["attention_mask", "input_ids"]),
                                  ("decoder", ["encoder_attention_mask", "encoder_hidden_states", "input_ids"])]
    else:
        assert recorder.parts == [("model", ["attention_mask", "input_ids"])]


def test_batch_to_keeps_the_patch_object():
    batch = batch_for(0)
    batch.forward_patch = Recorder()
    moved = batch.to(torch.device("cpu"))
    assert moved.forward_patch is batch.forward_patch
    assert torch.equal(moved.input_ids, batch.input_ids)
