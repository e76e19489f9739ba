"""Tokenizers for the tiny models: trained locally on LAMA evidence text, or built from real GPT-2 BPE files.

Every builder is deterministic: same recipe and same inputs => same vocabulary, same ids.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.io_utils import sha256_file
from bench.paths import data_dir, mirror_dir

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
BERT_WORDS = re.compile(r"[^\W_]+|[^\w\s]|_")  # BERT's pre-tokeniser: runs of letters/digits, each punctuation mark
PREP_FIX = "run `python -m data_prep lama`, or set BENCH_MIRROR to the folder holding lama/ and tokenizers/"


# ---------------------------------------------------------------- inputs


def _mirror(*parts: str) -> Path | None:
    root = mirror_dir()
    return root.joinpath(*parts) if root is not None else None


def evidence_source() -> Path:
    """The LAMA evidence file to train on: data/lama/evidences.jsonl.gz, else the raw mirror copy."""
    prepared = data_dir() / "lama" / "evidences.jsonl.gz"
    if prepared.is_file():
        return prepared
    raw = _mirror("lama", "evidences", "trex_evidences.jsonl.gz")
    if raw is not None and raw.is_file():
        return raw
    raise DataError("no LAMA evidence sentences to train tiny tokenizers on", file=prepared, fix=PREP_FIX)


@lru_cache(maxsize=4)
def _all_sentences(path: Path) -> tuple[str, ...]:
    """Unique sentences of an evidence file (prepared `sentence`, or raw `masked_sentence` filled in)."""
    seen: dict[str, None] = {}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "sentence" in row:
                text = row["sentence"]
            elif "masked_sentence" in row and "obj_surface" in row:
                text = row["masked_sentence"].replace("[MASK]", row["obj_surface"], 1)
            else:
                raise DataError("expected `sentence` or `masked_sentence`+`obj_surface`", file=path, line=number)
            text = " ".join(str(text).split())
            if text:
                seen.setdefault(text, None)
    return tuple(seen)


@lru_cache(maxsize=4)
def _by_hash(path: Path) -> tuple[str, ...]:
    return tuple(sorted(_all_sentences(path), key=lambda text: hashlib.sha1(text.encode("utf-8")).digest()))


def training_sentences(count: int, path: Path | None = None) -> list[str]:
    """`count` evidence sentences: those with the smallest sha1, so the sample ignores file order."""
    return list(_by_hash(path or evidence_source())[:count])


@lru_cache(maxsize=8)
def lama_vocab(key: str, size: str = "34k") -> tuple[str, ...]:
    """LAMA vocabulary list `key` (e.g. bert-base-cased): data/lama/vocab/<size>/<key>.txt, else the mirror JSON."""
    prepared = data_dir() / "lama" / "vocab" / size / f"{key}.txt"
    if prepared.is_file():
        return tuple(line.rstrip("\n") for line in prepared.open(encoding="utf-8") if line.strip())
    raw = _mirror("lama", f"{size}-vocab.json")
    if raw is not None and raw.is_file():
        table = json.loads(raw.read_text(encoding="utf-8"))
        if key not in table:
            raise DataError(f"no list {key!r} (have {sorted(table)})", file=raw)
        return tuple(table[key])
    raise DataError("LAMA vocabulary list not found", file=prepared, fix=PREP_FIX)


def lama_words(key: str, size: str = "34k") -> list[str]:
    """The LAMA list as plain words (RoBERTa/GPT-2 lists store them with a leading 'Ġ')."""
    return [token[1:] if token.startswith("Ġ") and len(token) > 1 else token for token in lama_vocab(key, size)]


def gpt2_bpe_files() -> tuple[Path, Path]:
    """The real GPT-2 vocab.json + merges.txt: data/tokenizers/gpt2/, else <mirror>/tokenizers/gpt2/."""
    candidates = [data_dir() / "tokenizers" / "gpt2", _mirror("tokenizers", "gpt2")]
    for folder in candidates:
        if folder is not None and (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            return folder / "vocab.json", folder / "merges.txt"
    raise DataError(
        "GPT-2 BPE files vocab.json + merges.txt not found",
        file=candidates[-1] or candidates[0],
        fix="set BENCH_MIRROR to the shared data folder (it has tokenizers/gpt2/), "
        "or copy the two files into data/tokenizers/gpt2/",
    )


def _gpt2_vocab_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab_file, merges_file = gpt2_bpe_files()
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    lines = merges_file.read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    return vocab, merges  # type: ignore[return-value]


def _digest(parts: Iterable[str | bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def input_fingerprint(spec: Mapping[str, Any]) -> str:
    """Hash of the files a tokenizer build reads besides its recipe (evidence file, word list, BPE files).

    Whole-file hashes keep this cheap (no corpus parsing); a change of file rebuilds, and when the
    sentences sampled are the same the rebuilt model has the same revision.
    """
    if spec["kind"] in ("gpt2-bpe", "roberta-bpe"):
        return _digest(path.read_bytes() for path in gpt2_bpe_files())
    forced = sorted(lama_words(spec["force_lama_vocab"])) if spec.get("force_lama_vocab") else []
    return _digest([sha256_file(evidence_source()), "\x01", *forced])


# ---------------------------------------------------------------- builders


def build_tokenizer(spec: Mapping[str, Any], max_length: int) -> tuple[Any, dict[str, Any]]:
    """Build the tokenizer a recipe's `tokenizer:` block asks for; returns (tokenizer, info)."""
    kind = spec["kind"]
    builders = {"wordpiece": _wordpiece, "gpt2-bpe": _gpt2, "roberta-bpe": _roberta, "unigram": _unigram}
    if kind not in builders:
        raise DataError(f"unknown tokenizer kind {kind!r} (expected one of {sorted(builders)})")
    tokenizer, info = builders[kind](spec)
    tokenizer.model_max_length = max_length
    info["vocab_size"] = len(tokenizer)
    if spec.get("force_lama_vocab") or kind != "wordpiece":
        key = spec.get("force_lama_vocab") or ("gpt2-xl" if kind == "gpt2-bpe" else "roberta-large")
        info["lama_single_token_share"] = single_token_share(tokenizer, lama_words(key), kind)
        info["lama_vocab_key"] = key
    return tokenizer, info


def single_token_share(tokenizer: Any, words: list[str], kind: str) -> float:
    """Share of `words` that encode to exactly one token (BPE: with the leading space, as in mid-sentence)."""
    prefix = " " if kind in ("gpt2-bpe", "roberta-bpe") else ""
    single = sum(len(tokenizer.tokenize(prefix + word)) == 1 for word in words)
    return single / max(len(words), 1)


def _wordpiece(spec: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """WordPiece vocabulary learned on LAMA text, plus every forced LAMA token as a whole-word entry.

    The pieces are learned with sentencepiece BPE on BERT-pre-tokenised text (word-initial pieces keep
    their form, inner pieces get '##'): the `tokenizers` WordPiece trainer breaks ties in hash-map order,
    so its vocabulary changes from run to run, and these builds must be bit-identical.
    """
    import sentencepiece as spm
    from tokenizers import normalizers
    from transformers import BertTokenizerFast

    lower = bool(spec.get("lowercase", False))
    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=lower, lowercase=lower)
    text = [" ".join(BERT_WORDS.findall(norm.normalize_str(line)))
            for line in training_sentences(int(spec["corpus_sentences"]))]
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=proto, vocab_size=int(spec["vocab_size"]), model_type="bpe",
        character_coverage=0.9999, normalization_rule_name="identity", num_threads=1, minloglevel=2,
        shuffle_input_sentence=False, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, max_sentencepiece_length=16,
    )
    processor = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab: dict[str, int] = {token: index for index, token in enumerate(BERT_SPECIALS)}
    for index in range(1, processor.get_piece_size()):
        piece = processor.id_to_piece(index)
        if piece == "▁":
            continue
        word_initial = piece.startswith("▁")
        body = piece[1:] if word_initial else piece
        forms = [body, "##" + body] if len(body) == 1 else [body if word_initial else "##" + body]
        for form in forms:  # single characters exist in both forms, so any word of seen characters encodes
            vocab.setdefault(form, len(vocab))
    trained = len(vocab)
    forced = sorted(set(lama_words(spec["force_lama_vocab"]))) if spec.get("force_lama_vocab") else []
    for token in forced:
        vocab.setdefault(token, len(vocab))
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=lower)
    return tokenizer, {"kind": "wordpiece", "trained_vocab": trained, "forced_added": len(vocab) - trained}


def _gpt2(spec: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The real GPT-2 byte-level BPE (50,257 tokens)."""
    from transformers import GPT2TokenizerFast

    vocab, merges = _gpt2_vocab_merges()
    return GPT2TokenizerFast(vocab=vocab, merges=merges), {"kind": "gpt2-bpe"}


def _roberta(spec: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """RoBERTa layout over GPT-2 BPE: <s>=0 <pad>=1 </s>=2 <unk>=3, GPT-2 tokens, <mask> last."""
    from tokenizers import AddedToken
    from transformers import RobertaTokenizerFast

    gpt2_vocab, merges = _gpt2_vocab_merges()
    vocab = {token: index for index, token in enumerate(ROBERTA_SPECIALS)}
    for token, _ in sorted(gpt2_vocab.items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    vocab["<mask>"] = len(vocab)
    # as roberta-base ships it: <mask> swallows the space before it, so " <mask>" is one token
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
    return RobertaTokenizerFast(vocab=vocab, merges=merges, mask_token=mask), {"kind": "roberta-bpe"}


def _unigram(spec: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """sentencepiece unigram: ALBERT layout (lower-cased) or T5 layout (cased, + <extra_id_N> sentinels)."""
    import sentencepiece as spm
    from transformers import AlbertTokenizerFast, T5TokenizerFast

    layout = spec.get("layout", "albert")
    if layout == "albert":
        cls, ids = AlbertTokenizerFast, {"pad_id": 0, "unk_id": 1, "bos_id": -1, "eos_id": -1}
        ids["control_symbols"] = ["[CLS]", "[SEP]", "[MASK]"]
    elif layout == "t5":
        cls, ids = T5TokenizerFast, {"pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1}
    else:
        raise DataError(f"unknown unigram layout {layout!r} (expected albert or t5)")
    extra = int(spec.get("extra_ids", 0)) if layout == "t5" else 0
    sentinels = [(f"<extra_id_{i}>", 0.0) for i in range(extra - 1, -1, -1)]

    def make(pieces: list[tuple[str, float]]) -> Any:
        if layout == "t5":
            return cls(vocab=pieces + sentinels, extra_ids=extra)
        return cls(vocab=pieces, do_lower_case=bool(spec.get("lowercase", True)))

    normalizer = make([("<pad>", 0.0), ("<unk>", 0.0), ("</s>", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0),
                       ("[MASK]", 0.0)]).backend_tokenizer.normalizer
    norm = normalizer.normalize_str if normalizer is not None else (lambda text: text)
    text = [norm(sentence) for sentence in training_sentences(int(spec["corpus_sentences"]))]
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=proto, vocab_size=int(spec["vocab_size"]),
        model_type="unigram", character_coverage=0.9995, normalization_rule_name="identity",
        num_threads=1, minloglevel=2, shuffle_input_sentence=False, **ids,
    )
    processor = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    pieces = [(processor.id_to_piece(i), float(processor.get_score(i))) for i in range(processor.get_piece_size())]
    info: dict[str, Any] = {"kind": "unigram", "layout": layout, "trained_vocab": len(pieces)}
    if spec.get("force_lama_vocab"):
        words = lama_words(spec["force_lama_vocab"])
        first = make(pieces)
        info["trained_single_token_share"] = single_token_share(first, words, "unigram")
        pieces = pieces + _forced_pieces(first, pieces, words, norm)
    info["forced_added"] = len(pieces) - info["trained_vocab"]
    return make(pieces), info


def _forced_pieces(tokenizer: Any, pieces: list[tuple[str, float]], words: list[str], norm: Any) -> list[tuple[str, float]]:
    """Whole-word pieces '▁word' for words that split, scored just above their current segmentation."""
    scores = dict(pieces)
    floor = min(scores.values())
    added: dict[str, float] = {}
    for word in sorted(set(words)):
        split = tokenizer.tokenize(word)
        if len(split) == 1:
            continue
        piece = "▁" + norm(word)
        if piece in scores or piece in added:
            continue
        total = sum(scores.get(token, floor) for token in split)
        added[piece] = 0.9 * total  # log-probs are negative: 0.9 * total > total, so Viterbi prefers the piece
    return sorted(added.items())
