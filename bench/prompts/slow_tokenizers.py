"""Ids as the references' slow tokenizers (transformers 3.0.2) give them, from the suite's fast tokenizers.

``task.tokenization: pet_slow`` (PET and PT-Fewshot pin transformers 3.0.2):

- SentencePiece (ALBERT): :func:`bench.prompts.pieces.slow_sentencepiece_ids` (a digit before a comma).
- WordPiece (BERT): :func:`slow_wordpiece_ids`. 3.0.2's ``BasicTokenizer.tokenize`` never calls its
  ``_clean_text``: control and format characters (Unicode category C*, e.g. U+202C, U+00AD, U+200B) and
  U+0000 / U+FFFD stay in the word, which then becomes ``[UNK]`` or other pieces; the fast tokenizer's
  normalizer (``BertNormalizer(clean_text=True)``) and today's slow tokenizer drop them. Its other steps
  are the fast one's: CJK characters spaced, whitespace split, lower case + accents stripped (uncased
  vocabularies), split at punctuation, then the same greedy WordPiece (run here by the fast model).
- Byte-level BPE (RoBERTa): PET's parts (``bench.prompts.render``); ids unchanged here.

Written out because transformers 5 has no slow tokenizers and today's ``BasicTokenizer`` cleans the text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache

from bench.prompts.pieces import SENTENCEPIECE, WORDPIECE, slow_sentencepiece_ids, tokenizer_info

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))  # BERT's "Chinese character" blocks
_ASCII_PUNCT = set(range(33, 48)) | set(range(58, 65)) | set(range(91, 97)) | set(range(123, 127))


def _is_punctuation(char: str) -> bool:
    """BERT's rule: every non-alphanumeric printable ASCII character, and Unicode category P*."""
    return ord(char) in _ASCII_PUNCT or unicodedata.category(char).startswith("P")


def _space_cjk(text: str) -> str:
    return "".join(f" {c} " if any(lo <= ord(c) <= hi for lo, hi in _CJK) else c for c in text)


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    out: list[str] = []
    start_new = True
    for char in word:
        if _is_punctuation(char):
            out.append(char)
            start_new = True
        else:
            if start_new:
                out.append("")
            out[-1] += char
            start_new = False
    return out


def slow_basic_words(text: str, lowercase: bool) -> list[str]:
    """transformers 3.0.2's ``BasicTokenizer.tokenize`` (no ``_clean_text``): the words WordPiece then splits."""
    words: list[str] = []
    for word in _space_cjk(text).split():
        if lowercase:
            word = _strip_accents(word.lower())
        words.extend(_split_punctuation(word))
    return " ".join(words).split()


@lru_cache(maxsize=8)
def _lowercase(tokenizer) -> bool:
    normalizer = json.loads(tokenizer.backend_tokenizer.to_str()).get("normalizer") or {}
    return bool(normalizer.get("lowercase"))


def slow_wordpiece_ids(tokenizer, text: str) -> list[int]:
    """Ids of ``text`` as transformers 3.0.2's slow ``BertTokenizer`` gives them (``tokenize`` + ids): special
    tokens kept whole (and the text around them stripped), the rest as :func:`slow_basic_words`, each word by
    the fast tokenizer's own WordPiece model (the same greedy longest-match, ``[UNK]`` for a word it cannot cover)."""
    backend = tokenizer.backend_tokenizer
    specials = sorted(set(tokenizer.all_special_tokens), key=len, reverse=True)
    lowercase = _lowercase(tokenizer)
    ids: list[int] = []
    chunks = re.split("(" + "|".join(map(re.escape, specials)) + ")", text) if specials else [text]
    for chunk in chunks:
        if chunk in specials:
            ids.append(tokenizer.convert_tokens_to_ids(chunk))
            continue
        for word in slow_basic_words(chunk, lowercase):
            ids.extend(token.id for token in backend.model.tokenize(word))
    return ids


def pet_slow_ids(tokenizer, text: str, ids: list[int]) -> list[int]:
    """``ids`` (the fast tokenizer's for ``text``) as the slow tokenizer gives them: WordPiece from ``text``,
    SentencePiece by :func:`slow_sentencepiece_ids`, others unchanged."""
    kind = tokenizer_info(tokenizer).kind
    if kind == WORDPIECE:
        return slow_wordpiece_ids(tokenizer, text)
    if kind == SENTENCEPIECE:
        return slow_sentencepiece_ids(tokenizer, ids)
    return list(ids)
