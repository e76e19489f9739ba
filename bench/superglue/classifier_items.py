"""Label-space inputs (``mode: labels``, e.g. ``method=finetune`` and PET's distilled classifier): token ids of
plain text pairs, in the form a reference feeds its tokenizer (:mod:`bench.superglue.classifier_inputs`).

COPA has two forms (``task.copa_classifier_inputs``):

- ``choices``: one sequence per choice ("premise, so choice"), one logit each (a multiple-choice head);
- ``pet_pair``: PET's sequence classifier (timoschick/pet ``CopaTaskHelper.get_sequence_classifier_inputs``):
  ONE pair (premise without its final punctuation, the joiner "because" (cause) / "so" (effect), choice 1
  with its first letter lower-cased and its final punctuation kept; the same with choice 2) read by a
  2-label classifier: label 0 = choice 1, label 1 = choice 2, the order of the PET ensemble's soft labels.

WiC has two (``task.wic_classifier_inputs``, unset: ``word``): ``word`` ("word: sentence1", sentence2), as
timoschick/pet's ``WicTaskHelper.get_sequence_classifier_inputs`` is written; ``sentences`` (sentence1, sentence2),
what PET runs: @21d32de its ``TASK_HELPERS`` registers no WiC helper, so the preprocessor encodes text_a / text_b.

``task.tokenization: pet_slow`` encodes the texts as PET's ``SequenceClassifierPreprocessor`` does with
transformers 3.0.2's slow tokenizers (:func:`pet_slow_pair`): ``encode_plus(text_a, text_b, max_length=...)``,
its default ``longest_first`` truncation; ``fast`` (default) calls the tokenizer as loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bench.errors import ConfigError
from bench.prompts.pieces import BYTE_BPE, SENTENCEPIECE, WORDPIECE, slow_sentencepiece_ids, tokenizer_info
from bench.prompts.slow_tokenizers import slow_wordpiece_ids
from bench.superglue import data as sg
from bench.superglue.batching import Item
from bench.superglue.classifier_inputs import classifier_pairs

COPA_FORMS = ("choices", "pet_pair")  # task.copa_classifier_inputs
WIC_FORMS = ("word", "sentences")  # task.wic_classifier_inputs


def _form(task_cfg: Mapping, key: str, forms: tuple[str, str]) -> str:
    """``task.<key>``, checked (``forms[0]`` when unset); ``forms[1]`` is PET's input and needs classifier_inputs=pet."""
    form = str(task_cfg.get(key) or forms[0])
    if form not in forms:
        raise ConfigError(f"task.{key}={form!r} is not allowed; use one of {', '.join(forms)}")
    if form == forms[1] and str(task_cfg.get("classifier_inputs") or "pet") != "pet":
        raise ConfigError(f"task.{key}={form} is PET's classifier input: it needs "
                          f"task.classifier_inputs=pet, not {task_cfg.get('classifier_inputs')!r}")
    return form


def copa_form(task_cfg: Mapping) -> str:
    """``task.copa_classifier_inputs``: ``choices`` (unset) or PET's ``pet_pair``."""
    return _form(task_cfg, "copa_classifier_inputs", COPA_FORMS)


def wic_form(task_cfg: Mapping) -> str:
    """``task.wic_classifier_inputs``: ``word`` (unset) or PET's ``sentences``."""
    return _form(task_cfg, "wic_classifier_inputs", WIC_FORMS)


def copa_pet_pair(example: sg.Example) -> tuple[str, str]:
    """PET's one COPA pair: ("premise joiner choice1", "premise joiner choice2")."""
    f = example.fields
    head = f"{sg.bare(f['premise'])} {'because' if f['question'] == 'cause' else 'so'}"
    return f"{head} {sg.lcfirst(f['choice1'])}", f"{head} {sg.lcfirst(f['choice2'])}"


def slow_text_ids(tok, text: str) -> list[int]:
    """transformers 3.0.2's ``tokenize`` + ids of ``text`` (no specials added): the text is split at special-token
    strings (kept whole; the text beside them stripped, except on byte-level BPE, whose specials are
    ``AddedToken(lstrip=False, rstrip=False)``), each chunk by the slow tokenizer's rules
    (:mod:`bench.prompts.slow_tokenizers`; byte-level BPE without a prefix space, as ``encode_plus`` defaults)."""
    if not text.strip():
        return []
    kind = tokenizer_info(tok).kind
    specials = sorted(set(tok.all_special_tokens), key=len, reverse=True)
    chunks = re.split("(" + "|".join(map(re.escape, specials)) + ")", text) if specials else [text]
    ids: list[int] = []
    for i, chunk in enumerate(chunks):
        if chunk in specials:
            ids.append(tok.convert_tokens_to_ids(chunk))
            continue
        if kind != BYTE_BPE:  # 3.0.2 strips the text beside a plain-string special token
            chunk = chunk.rstrip() if i < len(chunks) - 1 else chunk
            chunk = chunk.lstrip() if i > 0 else chunk
        if not chunk.strip() and kind != BYTE_BPE or not chunk:
            continue
        if kind == WORDPIECE:
            ids.extend(slow_wordpiece_ids(tok, chunk))
        elif kind == SENTENCEPIECE:
            ids.extend(slow_sentencepiece_ids(tok, list(tok.encode(chunk, add_special_tokens=False))))
        else:
            ids.extend(tok.encode(chunk, add_special_tokens=False))
    return ids


def pet_slow_pair(tok, text_a: str, text_b: str | None, max_length: int) -> dict[str, list[int]]:
    """``encode_plus(text_a, text_b, add_special_tokens=True, max_length=max_length)`` of transformers 3.0.2
    (PET's ``SequenceClassifierPreprocessor``; an empty text is ``None``): slow ids, then ``longest_first``
    truncation (one token at a time from the longer text, the second on a tie), then the specials. Segment ids
    are BERT's (0 up to the first [SEP], 1 after); only BERT / XLNet are handed them (:func:`classifier_item`)."""
    info = tokenizer_info(tok)
    a = slow_text_ids(tok, text_a) if text_a else []
    b = slow_text_ids(tok, text_b) if text_b else None
    if b is not None and info.pair_middle is None:
        raise ConfigError(f"cannot tell how {type(tok).__name__} separates a text pair ([SEP])")
    middle = list(info.pair_middle or ()) if b is not None else []
    prefix, suffix = list(info.prefix_ids), list(info.suffix_ids)
    for _ in range(len(prefix) + len(a) + len(middle) + len(b or []) + len(suffix) - max_length):
        if b is None or len(a) > len(b):
            a = a[:-1]
        else:
            b = b[:-1]
    first = prefix + a + middle
    second = b + suffix if b is not None else []
    if b is None:
        first += suffix
    return {"input_ids": first + second, "token_type_ids": [0] * len(first) + [1] * len(second)}


def classifier_item(example: sg.Example, tok, task_cfg: Mapping, model_type: str | None, max_length: int) -> Item:
    """One example's classifier sequences (one per option for multiple choice) and the segment ids passed."""
    sep = getattr(tok, "sep_token", None) or ""
    form = str(task_cfg.get("classifier_inputs") or "pet")
    if example.task == "COPA" and copa_form(task_cfg) == "pet_pair":
        pairs: list[tuple[str, str | None]] = [copa_pet_pair(example)]
    elif example.task == "WiC" and wic_form(task_cfg) == "sentences":
        pairs = [(example.fields["sentence1"], example.fields["sentence2"])]
    else:
        pairs = classifier_pairs(example, form, int(task_cfg.get("classifier_template") or 0), sep)
    if str(task_cfg.get("tokenization") or "fast") == "pet_slow":
        if form != "pet":
            raise ConfigError(f"task.tokenization=pet_slow encodes PET's classifier inputs (transformers 3.0.2), "
                              f"not task.classifier_inputs={form!r}: use tokenization=fast")
        encoded = [pet_slow_pair(tok, a, b, max_length) for a, b in pairs]
    else:
        encoded = [tok(a, b, truncation=True, max_length=max_length) if b is not None else
                   tok(a, truncation=True, max_length=max_length) for a, b in pairs]
    # segments as the reference passes them: P-tuning-v2 whatever its tokenizer returns (BERT's);
    # PET only to bert / xlnet (wrapper.generate_default_inputs), so ALBERT reads segment 0
    pass_types = form == "ptv2" or model_type in ("bert", "xlnet")
    types = [list(e["token_type_ids"]) for e in encoded if "token_type_ids" in e and pass_types]
    return Item(example, sequences=[list(e["input_ids"]) for e in encoded],
                types=types if len(types) == len(encoded) else [])
