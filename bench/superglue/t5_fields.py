"""Template fields for T5's SuperGLUE text-to-text formats (conf/template/t5_<task>.yaml), from the official rows.

T5 reads SuperGLUE through tensorflow-datasets' ``super_glue`` builder and then its own preprocessors
(google-research/text-to-text-transfer-transformer, t5/data/preprocessors.py). Where those change the text,
the change is rebuilt here so a plain template can write T5's exact input string (checked by execution:
tests/parity/test_t5formats.py against tests/golden/parity/t5formats/):

- MultiRC: ``<br>`` becomes a space and ``<b>`` / ``</b>`` vanish (T5's ``glue`` for MultiRC applies this to
  the whole input; no tag spans two fields, so per field is the same) -> ``paragraph_t5``, ``question_t5``,
  ``answer_t5``.
- ReCoRD: a ``@highlight`` line break after final punctuation becomes a space, any other becomes ". "
  (``record``) -> ``passage_t5``; the entity strings, de-duplicated and sorted (tfds), joined by ", " ->
  ``entities_t5``.
- WSC: tfds' ``wsc.fixed`` span repair, then ``wsc_simple``: the word at ``span2_index`` (words split at
  single spaces) must be the pronoun; it is written ``*pronoun*`` -> ``text_t5``; the target is the
  (repaired) referent -> ``target_t5``. Rows T5's code rejects get no ``text_t5`` (``t5_error`` says why).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# tfds leaves these two referents as they are: their words are not contiguous in the text
_UNREPAIRABLE = ("Kamenev and Zinoviev", "Kamenev, Zinoviev, and Stalin")


def multirc_text(text: str) -> str:
    """MultiRC markup as T5 removes it."""
    return re.sub(r"</?b>", "", text.replace("<br>", " "))


def record_passage(text: str) -> str:
    """ReCoRD's ``@highlight`` lines joined as T5's ``record`` joins them."""
    text = re.sub(r"([.?!\"'])\n@highlight\n", r"\1 ", text)
    return text.replace("\n@highlight\n", ". ")


def record_entities(text: str, spans: list[Mapping[str, Any]]) -> list[str]:
    """The passage's entity strings, unique and sorted (tfds' ``super_glue/record``)."""
    return sorted({text[int(s["start"]): int(s["end"]) + 1] for s in spans})


def _repair_span(text: str, span: str, index: int) -> str:
    """tfds ``wsc.fixed``: a span that is not a substring gets the case of the word at its index, no final
    period and no line break."""
    if span in text or span in _UNREPAIRABLE:
        return span
    word = text.split()[index]
    span = (span[0].lower() if word[0].islower() else span[0].upper()) + span[1:]
    return span.rstrip(".").replace("\n", " ")


def wsc_fields(row: Mapping[str, Any]) -> dict[str, str]:
    """``text_t5`` (pronoun as ``*it*``: T5's ``wsc_simple`` input without its "wsc:" prefix) and ``target_t5``.

    T5 asserts that word ``span2_index`` (words split at single spaces) is the pronoun and hard-codes the
    output of the two official rows where it is not; they are matched here by rule: the pronoun is the next
    word (its index points one early), or the word is the pronoun with punctuation glued on (written
    ``*it* ,"``, the text's trailing space dropped). Any other mismatch gets ``t5_error`` instead."""
    text, target = str(row["text"]), row["target"]
    index2 = int(target["span2_index"])
    span1 = _repair_span(text, str(target["span1_text"]), int(target["span1_index"]))
    pronoun = _repair_span(text, str(target["span2_text"]), index2)
    if str(target["span2_text"]) not in text and "theyscold" in str(target["span2_text"]):
        index2 = 10  # tfds moves this row's pronoun index (and leaves the text as it is)
    words = text.split(" ")
    rest, strip = "", False
    if 0 < index2 + 1 < len(words) and words[index2] != pronoun and words[index2 + 1] == pronoun:
        index2 += 1
    elif 0 < index2 < len(words) and words[index2] != pronoun and words[index2].startswith(pronoun) \
            and not any(c.isalnum() for c in words[index2][len(pronoun):]):
        rest, strip = words[index2][len(pronoun):], True
    if not 0 < index2 < len(words) or (words[index2] != pronoun and not rest):
        return {"target_t5": span1, "t5_error": f"word {index2} of the text is not the pronoun {pronoun!r}"}
    blanked = " ".join([*words[:index2], "X", *([rest] if rest else []), *words[index2 + 1:]])
    blanked = blanked.strip() if strip else blanked
    return {"target_t5": span1, "text_t5": blanked.replace(" X ", f" *{pronoun}* ")}
