"""A deterministic byte-level BPE trainer (GPT-2 style) with forced whole-word tokens.

The `tokenizers` BPE trainer breaks count ties in hash-map order, so its merges change from run to
run; this one breaks ties by the pair's text, so the same corpus always gives the same merges.
Pre-tokenisation and the byte-to-unicode alphabet are GPT-2's (``tokenizers`` ByteLevel), so the
result loads as a standard ``GPT2TokenizerFast``.

Forced words (the LAMA ``gpt2-xl`` list, ``Ġword``) that the learned merges split are made single
tokens by appending merges that join their pieces left to right. Appended merges rank below every
learned merge, so they never change how other text is split, except for making the listed words whole.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

EOS = "<|endoftext|>"


def _pre_tokenizer() -> Any:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def byte_alphabet() -> list[str]:
    """The 256 byte characters of GPT-2's byte-level encoding, in byte order."""
    from tokenizers import pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    ordered = [_pre_tokenizer().pre_tokenize_str(bytes([b]).decode("latin-1"))[0][0] for b in range(256)]
    if len(set(ordered)) != 256 or set(ordered) != set(alphabet):  # pragma: no cover - guards the mapping
        ordered = sorted(alphabet)
    return ordered


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """Pre-token (byte-level 'Ġword') frequencies over `texts`."""
    pre = _pre_tokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(piece for piece, _ in pre.pre_tokenize_str(text))
    return counts


def train_merges(counts: Counter[str], vocab_size: int, min_frequency: int = 2) -> list[tuple[str, str]]:
    """Learn merges until the vocabulary (256 bytes + merges) reaches `vocab_size`."""
    words = [list(word) for word in sorted(counts)]
    freqs = [counts[word] for word in sorted(counts)]
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for index, (symbols, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in zip(symbols, symbols[1:], strict=False):
            pairs[pair] += freq
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in pairs.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    budget = vocab_size - 256
    while heap and len(merges) < budget:
        negative, pair = heapq.heappop(heap)
        if pairs.get(pair, 0) != -negative:
            continue  # stale entry
        if -negative < min_frequency:
            break
        merges.append(pair)
        merged = pair[0] + pair[1]
        changed: set[tuple[str, str]] = set()
        for index in sorted(where.pop(pair, ())):
            symbols, freq = words[index], freqs[index]
            out: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            for old in zip(symbols, symbols[1:], strict=False):
                pairs[old] -= freq
                changed.add(old)
            for new in zip(out, out[1:], strict=False):
                pairs[new] += freq
                where[new].add(index)
                changed.add(new)
            words[index] = out
        pairs.pop(pair, None)
        for other in changed:
            count = pairs.get(other, 0)
            if count > 0:
                heapq.heappush(heap, (-count, other))
            elif other in pairs:
                del pairs[other]
    return merges


def apply_merges(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """BPE-split one pre-token with merge ranks (lowest rank first), as the tokenizer does."""
    symbols = list(word)
    while len(symbols) > 1:
        best = min(range(len(symbols) - 1), key=lambda i: ranks.get((symbols[i], symbols[i + 1]), 1 << 60))
        if (symbols[best], symbols[best + 1]) not in ranks:
            break
        symbols[best: best + 2] = [symbols[best] + symbols[best + 1]]
    return symbols


def force_words(merges: list[tuple[str, str]], words: Sequence[str]) -> int:
    """Append merges so that every pre-token in `words` ('Ġword') is one token; returns merges added."""
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    added = 0
    for word in sorted(set(words)):
        pieces = apply_merges(word, ranks)
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in ranks:
                ranks[pair] = len(merges)
                merges.append(pair)
                added += 1
            pieces = apply_merges(word, ranks)
    return added


def build_tokenizer(texts: Iterable[str], vocab_size: int, forced: Sequence[str] = (),
                    min_frequency: int = 2, max_length: int = 128) -> tuple[Any, dict[str, Any]]:
    """A GPT2TokenizerFast trained on `texts`; `forced` pre-tokens ('Ġword') become single tokens."""
    from transformers import GPT2TokenizerFast

    counts = word_counts(texts)
    merges = train_merges(counts, vocab_size, min_frequency)
    learned = len(merges)
    added = force_words(merges, forced)
    vocab: dict[str, int] = {symbol: index for index, symbol in enumerate(byte_alphabet())}
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab[EOS] = len(vocab)
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges, model_max_length=max_length)
    info = {"kind": "byte-level-bpe", "pre_tokens": len(counts), "learned_merges": learned,
            "forced_merges": added, "vocab_size": len(tokenizer)}
    return tokenizer, info
