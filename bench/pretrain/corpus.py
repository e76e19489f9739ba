"""The pretraining corpus: LAMA T-REx evidence sentences, each with the span of its fact's object.

One evidence line = one (fact, sentence, object mention). The same sentence can state several facts
(or mention one object twice); each line is its own training example with its own salient span.

Selection (``select``):
- held out: whole sentences, chosen by hash, among sentences that state no test fact (LAMA's premise
  is that the model read the test facts' sentences; the held-out slice only measures the LM loss);
- kept: per fact at most ``cap_test`` (test facts) or ``cap_other`` (train/dev facts) lines, so a
  fact stated in 2,000 sentences does not crowd out the 32k facts stated once; lines that name the
  subject verbatim first (``prefer_subject``: ``any``, or ``before`` the object for causal LMs, which
  only learn subject -> object from left to right; a third of the lines say "He" or a short name and
  cannot link the object to the subject), then the smallest hash.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.errors import DataError

MASK = "[MASK]"


@dataclass(frozen=True)
class Sentence:
    """A filled-in evidence sentence and the character span of the object mention."""

    text: str
    obj_start: int
    obj_end: int
    sub_label: str
    obj_label: str
    relation: str
    split: str  # split of the fact the line states (train / dev / test)
    fact: str  # "<relation>|<sub_uri>|<obj_uri>"

    @property
    def sub_span(self) -> tuple[int, int] | None:
        """Character span of the subject label's first occurrence, when the sentence names it verbatim."""
        at = self.text.find(self.sub_label)
        return (at, at + len(self.sub_label)) if at >= 0 else None


def _hash(text: str, salt: str = "") -> bytes:
    return hashlib.sha1(f"{salt}\0{text}".encode()).digest()


def read_evidences(path: Path, relations: Sequence[str] | None = None) -> list[Sentence]:
    """Every evidence line (prepared data/lama/evidences.jsonl.gz or the raw mirror file), file order."""
    wanted = set(relations) if relations else None
    found: list[Sentence] = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            relation = row.get("predicate_id")
            if wanted is not None and relation not in wanted:
                continue
            masked, surface = row.get("masked_sentence"), row.get("obj_surface")
            if not isinstance(masked, str) or MASK not in masked or not isinstance(surface, str):
                raise DataError("expected masked_sentence with [MASK] and obj_surface", file=path, line=number)
            start = masked.index(MASK)
            text = masked[:start] + surface + masked[start + len(MASK):]
            found.append(Sentence(text, start, start + len(surface), row["sub_label"], row["obj_label"],
                                  relation, row["split"], f"{relation}|{row['sub_uri']}|{row['obj_uri']}"))
    if not found:
        raise DataError(f"no evidence sentences for relations {sorted(wanted or [])}", file=path)
    return found


@dataclass
class Selection:
    train: list[Sentence]
    heldout: list[Sentence]
    counts: dict[str, int]


def _rank(line: Sentence, prefer_subject: str | None) -> int:
    """0 for the preferred lines: subject named (``any``), or named before the object (``before``)."""
    if not prefer_subject:
        return 0
    span = line.sub_span
    if span is None:
        return 2
    return int(prefer_subject == "before" and span[0] > line.obj_start)


def select(sentences: Iterable[Sentence], cap_test: int | None, cap_other: int | None,
           heldout_fraction: float, prefer_subject: str | None = "any", salt: str = "mini-world") -> Selection:
    """Split lines into the training set (capped per fact) and a held-out slice (see module docstring)."""
    lines = list(sentences)
    test_texts = {s.text for s in lines if s.split == "test"}
    threshold = int(heldout_fraction * 2**32)

    def held(text: str) -> bool:
        return text not in test_texts and int.from_bytes(_hash(text, salt)[:4], "big") < threshold

    heldout = [s for s in lines if held(s.text)]
    by_fact: dict[str, list[Sentence]] = defaultdict(list)
    for s in lines:
        if not held(s.text):
            by_fact[s.fact].append(s)
    train: list[Sentence] = []
    for fact_lines in by_fact.values():
        cap = cap_test if fact_lines[0].split == "test" else cap_other
        ordered = sorted(fact_lines, key=lambda s: (_rank(s, prefer_subject), _hash(f"{s.text}\0{s.obj_start}", salt)))
        train.extend(ordered[:cap] if cap else ordered)
    train.sort(key=lambda s: _hash(f"{s.fact}\0{s.text}\0{s.obj_start}", salt))  # order-free, deterministic
    counts = {"lines": len(lines), "train": len(train), "heldout": len(heldout),
              "train_test_facts": sum(s.split == "test" for s in train), "facts": len(by_fact)}
    return Selection(train, heldout, counts)


def from_subject(line: Sentence) -> Sentence:
    """The line cut to start at its subject, when it names the subject before the object.

    A causal LM meets a LAMA prompt's subject at the start of the text, where a byte-level BPE spells
    it without the leading space it has mid-sentence ("Toyota" -> "T" "oy" "ota", not " Toyota");
    lines that start at the subject teach the model that spelling. Other lines are returned as they are.
    """
    span = line.sub_span
    if span is None or span[0] == 0 or span[0] > line.obj_start:
        return line
    cut = span[0]
    return replace(line, text=line.text[cut:], obj_start=line.obj_start - cut, obj_end=line.obj_end - cut)
