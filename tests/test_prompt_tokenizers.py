"""Tokenizers for the prompt tests, built offline, plus checks that they are the kinds we think.

- GPT-2: the real byte-level BPE files in shared/data/tokenizers/gpt2.
- RoBERTa: the same BPE with RoBERTa's specials (<s>=0 <pad>=1 </s>=2 <unk>=3, <mask> last,
  left-stripping as in roberta-base's tokenizer.json).
- BERT: a small cased WordPiece vocab written here; MiniLM's real uncased vocab when present.
- ALBERT / T5: Unigram vocabularies written here (exact goldens) or trained with sentencepiece
  on LAMA sentences (coverage for the whole-string equivalence test).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest
from transformers import (
    AddedToken,
    AlbertTokenizer,
    AutoTokenizer,
    BertTokenizer,
    GPT2Tokenizer,
    RobertaTokenizer,
    T5Tokenizer,
)

from bench.paths import mirror_dir
from bench.prompts.pieces import BYTE_BPE, SENTENCEPIECE, WORDPIECE, tokenizer_info


def shared(*parts: str) -> Path:
    root = mirror_dir()
    path = root.joinpath(*parts) if root else None
    if path is None or not path.exists():
        pytest.skip(f"shared data {'/'.join(parts)} not found beside the checkout")
    return path


def _gpt2_files() -> tuple[dict[str, int], list[tuple[str, str]]]:
    folder = shared("tokenizers", "gpt2")
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    return vocab, merges


@lru_cache(maxsize=2)
def gpt2(add_prefix_space: bool = False) -> GPT2Tokenizer:
    vocab, merges = _gpt2_files()
    return GPT2Tokenizer(vocab=vocab, merges=merges, add_prefix_space=add_prefix_space)


@lru_cache(maxsize=1)
def roberta() -> RobertaTokenizer:
    vocab, merges = _gpt2_files()
    ids = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    ids.update({token: i + 4 for token, i in vocab.items()})
    ids["<mask>"] = len(ids)
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
    return RobertaTokenizer(vocab=ids, merges=merges, mask_token=mask)


BERT_WORDS = ["Paris", "is", "located", "in", "France", "born", "was", "died", "the", "of", "capital", "Germany",
              "Dante", "Italy", "city", "which", "country", "state", "or", "In", "?", ".", ",", "(", ")", "'",
              "s", "##s", "Fr", "##ance", "Be", "##rlin"]


@lru_cache(maxsize=1)
def bert_cased() -> BertTokenizer:
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *BERT_WORDS])}
    return BertTokenizer(vocab=vocab, do_lower_case=False)


@lru_cache(maxsize=1)
def minilm():
    return AutoTokenizer.from_pretrained(str(shared("models", "all-MiniLM-L6-v2")))


# A hand-written Unigram vocabulary: goldens below do not depend on a training run.
SP_PIECES = [("▁", -2.0), ("▁.", -3.0), (".", -3.0), ("▁Paris", -4.0), ("▁paris", -4.0), ("▁is", -3.0),
             ("▁located", -5.0), ("▁in", -3.0), ("▁In", -4.0), ("▁France", -5.0), ("▁france", -5.0),
             ("France", -6.0), ("france", -6.0), ("▁(", -4.0), ("(", -4.0), (")", -4.0), ("born", -5.0),
             ("▁born", -5.0), ("▁which", -5.0), ("▁country", -5.0), ("?", -4.0), ("▁?", -5.0), ("s", -6.0),
             ("'", -6.0), ("▁1950", -7.0), ("1950", -7.0)]
SP_PIECES += [(c, -10.0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]


def _albert(pieces: list[tuple[str, float]]) -> AlbertTokenizer:
    specials = [("<pad>", 0.0), ("<unk>", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[MASK]", 0.0)]
    mask = AddedToken("[MASK]", lstrip=True, rstrip=False, normalized=False, special=True)
    return AlbertTokenizer(vocab=specials + pieces, mask_token=mask)


def _t5(pieces: list[tuple[str, float]]) -> T5Tokenizer:
    extra = [(f"<extra_id_{i}>", 0.0) for i in range(9, -1, -1)]
    return T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces, *extra], extra_ids=10)


@lru_cache(maxsize=1)
def albert_hand() -> AlbertTokenizer:
    return _albert(SP_PIECES)


@lru_cache(maxsize=1)
def t5_hand() -> T5Tokenizer:
    return _t5(SP_PIECES)


def lama_sentences(per_relation: int = 30) -> list[str]:
    """Relation templates filled with dev facts: a few hundred sentences of LAMA-like text."""
    lama = shared("lama")
    sentences = []
    for line in (lama / "relations.jsonl").read_text(encoding="utf-8").splitlines():
        rel = json.loads(line)
        dev = lama / "fact-retrieval" / "original" / rel["relation"] / "dev.jsonl"
        if not dev.is_file():
            continue
        for row in dev.read_text(encoding="utf-8").splitlines()[:per_relation]:
            fact = json.loads(row)
            sentences.append(rel["template"].replace("[X]", fact["sub_label"]).replace("[Y]", fact["obj_label"]))
    return sentences


@lru_cache(maxsize=2)
def trained_pieces(lowercase: bool) -> tuple[tuple[str, float], ...]:
    """Unigram pieces trained by sentencepiece (default settings: pieces never mix scripts)."""
    import tempfile

    import sentencepiece as spm

    sentences = [s.lower() if lowercase else s for s in lama_sentences()]
    with tempfile.TemporaryDirectory() as tmp:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_prefix=f"{tmp}/m", vocab_size=1000, model_type="unigram",
            character_coverage=1.0, pad_id=0, unk_id=1, bos_id=-1, eos_id=2, minloglevel=2)
        proc = spm.SentencePieceProcessor(model_file=f"{tmp}/m.model")
        return tuple((proc.id_to_piece(i), proc.get_score(i)) for i in range(3, proc.get_piece_size()))


@lru_cache(maxsize=1)
def albert_trained() -> AlbertTokenizer:
    return _albert(list(trained_pieces(True)))


@lru_cache(maxsize=1)
def t5_trained() -> T5Tokenizer:
    return _t5(list(trained_pieces(False)))


def test_tokenizer_kinds_and_special_layouts():
    cases = [(gpt2(), BYTE_BPE, (), (), False), (roberta(), BYTE_BPE, (0,), (2,), False),
             (bert_cased(), WORDPIECE, (2,), (3,), True), (albert_hand(), SENTENCEPIECE, (2,), (3,), True),
             (t5_hand(), SENTENCEPIECE, (), (1,), True), (gpt2(True), BYTE_BPE, (), (), True)]
    for tok, kind, prefix, suffix, start_space in cases:
        info = tokenizer_info(tok)
        assert (info.kind, info.prefix_ids, info.suffix_ids, info.start_space) == (kind, prefix, suffix, start_space)


def test_sentencepiece_training_gives_a_usable_vocabulary():
    tok = t5_trained()
    assert len(tok) == 3 + 997 + 10
    assert tok.convert_ids_to_tokens(tok.encode("is located in", add_special_tokens=False))[0] == "▁is"
