"""Label words -> token ids, in the form the word takes in running text for each tokenizer.

``prefix_space`` says whether whitespace precedes the word (``RenderedPrompt.target_prefix_space``):
GPT-2/RoBERTa then use ``Ġword``, SentencePiece ``▁word`` (ALBERT lower-cases: ``▁word``), and
BERT's WordPiece ignores it. Multi-token decoding (PET's) is handled by the methods, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.errors import ConfigError
from bench.prompts.pieces import encode_piece


def target_token_ids(word: str, tokenizer, *, prefix_space: bool) -> list[int]:
    """Token ids of ``word`` as it appears after a space (``prefix_space``) or attached to the previous text."""
    if not isinstance(word, str) or not word.strip():
        raise ConfigError(f"label word {word!r} is empty")
    return encode_piece(tokenizer, word, space_before=prefix_space)


def single_token_id(word: str, tokenizer, *, prefix_space: bool, method: str = "this method") -> int:
    """The one token id of ``word``; :class:`ConfigError` when it is several tokens (or none)."""
    ids = target_token_ids(word, tokenizer, prefix_space=prefix_space)
    if len(ids) != 1:
        tokens = tokenizer.convert_ids_to_tokens(ids)
        raise ConfigError(
            f"label word {word!r} is {len(ids)} tokens {tokens} for {type(tokenizer).__name__} "
            f"({getattr(tokenizer, 'name_or_path', '') or 'unnamed'}, prefix_space={prefix_space}); "
            f"{method} needs single-token label words: pick another word or a multi-token method (PET)")
    return ids[0]


@dataclass(frozen=True)
class Verbalizer:
    """Label -> label words (the first word is the main one; more words are averaged/summed by methods)."""

    label_words: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_config(cls, mapping: Mapping[object, object]) -> Verbalizer:
        """From a YAML mapping ``label: word`` or ``label: [word, ...]``; labels become strings."""
        if not isinstance(mapping, Mapping) or not mapping:
            raise ConfigError(f"verbalizer must be a non-empty mapping label -> word(s), got {mapping!r}")
        words: dict[str, tuple[str, ...]] = {}
        for label, value in mapping.items():
            items = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, Sequence) else ()
            if not items or not all(isinstance(w, str) and w.strip() for w in items):
                raise ConfigError(f"verbalizer label {label!r}: expected a word or a list of words, got {value!r}")
            words[str(label)] = items
        return cls(words)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label_words)

    def token_ids(self, tokenizer, *, prefix_space: bool) -> dict[str, list[list[int]]]:
        """Per label, the token ids of each of its words (possibly several tokens each)."""
        return {label: [target_token_ids(w, tokenizer, prefix_space=prefix_space) for w in words]
                for label, words in self.label_words.items()}

    def single_token_ids(self, tokenizer, *, prefix_space: bool, method: str = "this method") -> dict[str, list[int]]:
        """Per label, one token id per word; :class:`ConfigError` on any multi-token word."""
        return {label: [single_token_id(w, tokenizer, prefix_space=prefix_space, method=method) for w in words]
                for label, words in self.label_words.items()}


MULTI_TOKEN_CHOICES = ("refuse", "sum_logprob")


def check_label_words(verbalizer: Verbalizer, tokenizer, *, prefix_space: bool, policy: str = "refuse",
                      method: str = "this method", template: str = "the template") -> bool:
    """Whether every label word is one token; multi-token words are refused unless ``policy`` is
    ``sum_logprob`` (then each label is scored by the sum of its tokens' log-probabilities)."""
    if policy not in MULTI_TOKEN_CHOICES:
        raise ConfigError(f"method.multi_token={policy!r} is not one of {', '.join(MULTI_TOKEN_CHOICES)}")
    split = [(label, word, tokenizer.convert_ids_to_tokens(ids))
             for label, words in verbalizer.label_words.items()
             for word, ids in zip(words, verbalizer.token_ids(tokenizer, prefix_space=prefix_space)[label], strict=True)
             if len(ids) != 1]
    if split and policy == "refuse":
        listed = "; ".join(f"label {label!r} word {word!r} -> {len(toks)} tokens {toks}" for label, word, toks in split)
        raise ConfigError(
            f"{method} scores one token per label word, but with {template} and "
            f"{getattr(tokenizer, 'name_or_path', '') or type(tokenizer).__name__}: {listed}.\n"
            "  fix: pick single-token label words (template.verbalizer), or score each label by the sum of its "
            "tokens' log-probabilities with method.multi_token=sum_logprob (one mask per token, PET's decoding)")
    return not split
