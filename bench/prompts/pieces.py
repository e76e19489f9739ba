"""Tokenising one piece of running text the way it would be tokenised inside the whole string.

A template is tokenised piece by piece (PET style) so that fields can be truncated and pseudo
tokens inserted, yet the result must equal the tokenisation of the filled-in string. Each piece
is its text without surrounding whitespace plus ``space_before``: whether whitespace preceded it.

- byte-level BPE (GPT-2, RoBERTa): a preceded piece is tokenised with one leading space
  (``Ġword``); an attached piece (``[Y].``) without one, even when the tokenizer adds a prefix space.
- WordPiece (BERT): spaces carry no information; the piece is tokenised as is.
- SentencePiece (ALBERT, T5): a preceded piece starts with ``▁``; an attached piece gets no
  spurious ``▁`` (``France.`` is ``▁France`` ``.`` in running text, so ``[Y].`` renders ``.``).
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass

from bench.errors import ConfigError

BYTE_BPE, WORDPIECE, SENTENCEPIECE = "byte_bpe", "wordpiece", "sentencepiece"
SP_SPACE, BPE_SPACE = "\u2581", "\u0120"  # "▁", "Ġ"


@dataclass(frozen=True)
class TokenizerInfo:
    """What rendering needs to know about a tokenizer, computed once per tokenizer object."""

    kind: str
    prefix_ids: tuple[int, ...]  # special tokens the tokenizer puts before a single sequence
    suffix_ids: tuple[int, ...]  # ... and after it
    start_space: bool  # whether the first word of a string is tokenised as if preceded by a space
    pair_middle: tuple[int, ...] | None = None  # specials between the two texts of a pair; None: unknown
    pair_types: bool = False  # whether the second text of a pair gets token_type_ids 1 (BERT, ALBERT)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _backend(tokenizer):
    return getattr(tokenizer, "backend_tokenizer", None)


def _detect_kind(tokenizer) -> str:
    backend = _backend(tokenizer)
    if backend is not None:
        desc = f"{backend.pre_tokenizer} {backend.normalizer} {backend.decoder}"
        if "ByteLevel" in desc:
            return BYTE_BPE
        if "Metaspace" in desc or SP_SPACE in desc:
            return SENTENCEPIECE
        if type(backend.model).__name__ == "WordPiece":
            return WORDPIECE
    tokens = tokenizer.tokenize("a a a")
    if any(t.startswith(BPE_SPACE) for t in tokens[1:]):
        return BYTE_BPE
    if any(t.startswith(SP_SPACE) for t in tokens):
        return SENTENCEPIECE
    if hasattr(tokenizer, "sp_model"):
        return SENTENCEPIECE
    return WORDPIECE


def _special_layout(tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    plain = tokenizer.encode("a", add_special_tokens=False)
    full = tokenizer.encode("a", add_special_tokens=True)
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return tuple(full[:start]), tuple(full[start + len(plain) :])
    raise ConfigError(f"cannot tell where {type(tokenizer).__name__} puts its special tokens "
                      f"({plain} inside {full} not found)")


def _pair_layout(tokenizer, prefix: tuple[int, ...], suffix: tuple[int, ...]) -> tuple[tuple[int, ...] | None, bool]:
    first = tokenizer.encode("a", add_special_tokens=False)
    second = tokenizer.encode("b", add_special_tokens=False)
    encoded = tokenizer("a", "b", return_token_type_ids=True)
    full, types = list(encoded["input_ids"]), encoded.get("token_type_ids")
    head, tail = [*prefix, *first], [*second, *suffix]
    if full[: len(head)] != head or full[len(full) - len(tail) :] != tail or len(full) < len(head) + len(tail):
        return None, False
    middle = tuple(full[len(head) : len(full) - len(tail)])
    return middle, bool(types) and types[-1] == 1


def tokenizer_info(tokenizer) -> TokenizerInfo:
    """Kind (byte-level BPE, WordPiece, SentencePiece), special-token layout, start-of-text spacing."""
    try:
        cached = _CACHE.get(tokenizer)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    kind = _detect_kind(tokenizer)
    prefix, suffix = _special_layout(tokenizer)
    first = tokenizer.convert_ids_to_tokens(tokenizer.encode("a", add_special_tokens=False))
    marker = {BYTE_BPE: BPE_SPACE, SENTENCEPIECE: SP_SPACE}.get(kind)
    start_space = bool(marker and first and first[0].startswith(marker)) or kind == WORDPIECE
    info = TokenizerInfo(kind, prefix, suffix, start_space, *_pair_layout(tokenizer, prefix, suffix))
    with contextlib.suppress(TypeError):
        _CACHE[tokenizer] = info
    return info


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def _marked(tokenizer, text: str, marker: str, *, marked: bool) -> list[int]:
    """Tokens of ``text`` whose first word carries the space ``marker`` iff ``marked``.

    Used where the tokenizer's own start-of-text rule disagrees with the piece's context:
    normalise, pre-tokenise, fix the first word's marker, then run the tokenizer's model.
    """
    backend = _backend(tokenizer)
    if backend is None:  # slow tokenizer: fix the first token by hand
        tokens = tokenizer.tokenize(text)
        vocab = tokenizer.get_vocab()
        if tokens and not marked and tokens[0] == marker:
            tokens = tokens[1:]
        elif tokens and not marked and tokens[0].startswith(marker) and tokens[0][1:] in vocab:
            tokens = [tokens[0][1:], *tokens[1:]]
        elif tokens and marked and not tokens[0].startswith(marker) and marker + tokens[0] in vocab:
            tokens = [marker + tokens[0], *tokens[1:]]
        return tokenizer.convert_tokens_to_ids(tokens)
    normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
    if backend.pre_tokenizer is None:
        words = [normalized]
    else:
        words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]
    if words:
        bare = words[0][len(marker) :] if words[0].startswith(marker) else words[0]
        words[0] = marker + bare if marked else bare
    return [tok.id for word in words if word for tok in backend.model.tokenize(word)]


def encode_piece(tokenizer, text: str, *, space_before: bool) -> list[int]:
    """Token ids of ``text`` (no surrounding whitespace) as it appears inside running text."""
    text = text.strip()
    if not text:
        return []
    info = tokenizer_info(tokenizer)
    if info.kind == BYTE_BPE:
        if space_before:
            return _encode(tokenizer, " " + text)
        return _marked(tokenizer, text, BPE_SPACE, marked=False) if info.start_space else _encode(tokenizer, text)
    if info.kind == SENTENCEPIECE and space_before != info.start_space:
        return _marked(tokenizer, text, SP_SPACE, marked=space_before)
    return _encode(tokenizer, text)


def encode_raw(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` exactly as it stands (edge whitespace included), never a space added before it."""
    info = tokenizer_info(tokenizer)
    if info.kind == BYTE_BPE and info.start_space and text and not text[0].isspace():
        return _marked(tokenizer, text, BPE_SPACE, marked=False)
    return _encode(tokenizer, text)


TOKENIZATIONS = ("fast", "pet_slow")


def slow_sentencepiece_ids(tokenizer, ids: list[int]) -> list[int]:
    """Ids as transformers' slow ALBERT tokenizer gives them: a piece ending in a digit and a comma
    ("▁20,") is split into the re-encoded digits and "," (``AlbertTokenizer._tokenize``); the fast
    tokenizer keeps "▁20,". Other tokenizers' ids are returned unchanged. Pieces never cross words
    (whitespace splits them), so the rule applies piece by piece."""
    if tokenizer_info(tokenizer).kind != SENTENCEPIECE:
        return list(ids)
    out: list[int] = []
    for token_id, token in zip(ids, tokenizer.convert_ids_to_tokens(list(ids)), strict=True):
        if len(token) > 1 and token[-1] == "," and token[-2].isdigit():
            parts = tokenizer.convert_ids_to_tokens(_marked(tokenizer, token[:-1].replace(SP_SPACE, ""), SP_SPACE,
                                                            marked=True))
            if not token.startswith(SP_SPACE) and parts and parts[0].startswith(SP_SPACE):
                parts = parts[1:] if len(parts[0]) == 1 else [parts[0][1:], *parts[1:]]
            out.extend(tokenizer.convert_tokens_to_ids([*parts, ","]))
        else:
            out.append(token_id)
    return out
