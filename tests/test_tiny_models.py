"""Tiny offline models: deterministic builds, hub-cache layout, reload fidelity, tokenizer quirks of each family."""

from __future__ import annotations

import pytest
import torch

from bench.backbones import load_backbone, load_model_config
from bench.backbones.hub import repo_folder
from bench.models.tiny import BUILD_INFO, build_tiny, revision_of
from bench.models.tokenizers import lama_vocab, lama_words

TINY = ["tiny-bert", "tiny-roberta", "tiny-albert", "tiny-gpt2", "tiny-t5"]
CLASSES = {"tiny-bert": ("BertForMaskedLM", "BertTokenizer"), "tiny-roberta": ("RobertaForMaskedLM", "RobertaTokenizer"),
           "tiny-albert": ("AlbertForMaskedLM", "AlbertTokenizer"), "tiny-gpt2": ("GPT2LMHeadModel", "GPT2Tokenizer"),
           "tiny-t5": ("T5ForConditionalGeneration", "T5Tokenizer")}


def _logits(model, tokenizer, family: str) -> torch.Tensor:
    text = f"The capital of France is {tokenizer.mask_token or ''} ."
    batch = tokenizer([text, "Dante was born in Florence ."], return_tensors="pt", padding=family != "clm")
    if family == "seq2seq":
        batch["decoder_input_ids"] = torch.zeros((2, 3), dtype=torch.long)
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY)
def test_build_is_deterministic_and_reloads_identically_through_the_hub_cache(name, tiny_backbone, tmp_path):
    session = tiny_backbone(name)  # built (or reused) in data/models
    cfg = load_model_config(name)
    fresh = build_tiny(cfg, tmp_path, keep_in_memory=True)
    assert fresh.revision == session.revision  # same recipe, separate build => same files

    repo = repo_folder(cfg["hub_id"], tmp_path / "hub")
    assert (repo / "refs" / "main").read_text() == fresh.revision
    snapshot = repo / "snapshots" / fresh.revision
    assert fresh.snapshot == snapshot and revision_of(snapshot) == fresh.revision
    names = sorted(p.name for p in snapshot.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", BUILD_INFO} <= set(names)

    loaded = load_backbone(cfg, device="cpu", dtype="fp32", models_dir=tmp_path)  # reuses, no rebuild
    assert (loaded.source, loaded.revision, loaded.hub_id) == ("built", fresh.revision, f"bench-local/{name}")
    assert (type(loaded.model).__name__, type(loaded.tokenizer).__name__) == CLASSES[name]
    assert loaded.model.training is False
    assert len(loaded.tokenizer) == loaded.model.get_input_embeddings().weight.shape[0]
    out, inp = loaded.model.get_output_embeddings().weight, loaded.model.get_input_embeddings().weight
    assert out.data_ptr() == inp.data_ptr()  # tied, as the real models
    family = cfg["family"]
    assert torch.equal(_logits(loaded.model, loaded.tokenizer, family), _logits(fresh.model, fresh.tokenizer, family))


@pytest.fixture
def built_gpt2(tmp_path):
    """tiny-gpt2 built by this test into its own models folder: no earlier test needs to have built it."""
    return build_tiny(load_model_config("tiny-gpt2"), tmp_path), tmp_path


def test_ensure_built_reuses_the_current_build(built_gpt2, capsys):
    first, folder = built_gpt2
    capsys.readouterr()  # the fixture's own build message
    again = load_backbone(load_model_config("tiny-gpt2"), device="cpu", dtype="fp32", models_dir=folder)
    assert again.source == "built" and again.revision == first.revision
    assert "building tiny model" not in capsys.readouterr().out


def test_gpt2_keeps_the_real_bpe(tiny_backbone):
    tok = tiny_backbone("tiny-gpt2").tokenizer
    assert len(tok) == 50257 and tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 50256
    assert tok.tokenize(" Paris") == ["ĠParis"]
    assert tok.tokenize("Paris") == ["Paris"]
    assert tok.convert_tokens_to_ids(["ĠParis", "Ġthe", "!"]) == [6342, 262, 0]
    assert tok.convert_tokens_to_ids("Paris") != 6342


def test_roberta_layout(tiny_backbone):
    tok = tiny_backbone("tiny-roberta").tokenizer
    assert [tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert tok.mask_token_id == len(tok) - 1 == 50261
    assert tok.convert_tokens_to_ids("Ġthe") == 262 + 4
    assert tok(" Paris")["input_ids"] == [0, 6342 + 4, 2]


def test_albert_lower_cases(tiny_backbone):
    tok = tiny_backbone("tiny-albert").tokenizer
    assert tok.tokenize("Paris") == ["▁paris"]
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    ids = tok("Paris is in [MASK].")["input_ids"]
    assert ids[0] == tok.cls_token_id == 2 and ids[-1] == tok.sep_token_id == 3 and tok.mask_token_id in ids


def test_bert_keeps_case_and_every_lama_token(tiny_backbone):
    tok = tiny_backbone("tiny-bert").tokenizer
    assert tok.tokenize("Paris") == ["Paris"] and tok.tokenize("paris") != ["Paris"]
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = tok.get_vocab()
    words = lama_vocab("bert-base-cased")
    assert len(words) == 21035
    assert [word for word in words if word not in vocab] == []
    assert [word for word in words if tok.tokenize(word) != [word]] == []


def test_t5_sentinels_and_ids(tiny_backbone):
    tok = tiny_backbone("tiny-t5").tokenizer
    assert [tok.pad_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2]
    assert tok.convert_tokens_to_ids("<extra_id_0>") == len(tok) - 1
    assert tok.convert_tokens_to_ids("<extra_id_99>") == len(tok) - 100
    assert tok.tokenize("The <extra_id_0> is") == ["▁The", "<extra_id_0>", "▁is"]
    assert tok("Paris")["input_ids"][-1] == 1  # </s> appended


@pytest.mark.parametrize("name", ["tiny-roberta", "tiny-albert", "tiny-gpt2", "tiny-t5"])
def test_lama_objects_are_single_tokens(tiny_backbone, name):
    backbone = tiny_backbone(name)
    prefix = " " if backbone.arch in ("gpt2", "roberta") else ""
    words = lama_words(backbone.lama_vocab_key)
    assert len(words) == 18154
    split = [word for word in words if len(backbone.tokenizer.tokenize(prefix + word)) != 1]
    assert split == []
