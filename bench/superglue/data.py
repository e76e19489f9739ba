"""SuperGLUE / FewGLUE examples from the prepared JSONL (native SuperGLUE fields).

Variants (``task.variant``) and their splits:

- ``fewglue``: ``train`` = the 32-shot FewGLUE set, ``dev32`` = FewGLUE_32dev's 32 extra labeled
  examples (P-Tuning's model-selection set), ``val`` = the official SuperGLUE validation set (the
  papers' test set), ``unlabeled`` where FewGLUE has one.
- ``superglue``: ``train`` = the full training set minus a fixed held-out part, ``heldout`` =
  that part (``heldout_fraction`` of the rows, chosen by a seed that depends on the task only, so
  every run seed selects on the same rows), ``val`` = the validation set. Only RTE, WiC and WSC
  have a full labeled training set in the prepared data.

One :class:`Example` per classification decision: MultiRC gives one per answer option (grouped by
question), ReCoRD one per query with the passage's entities as its choices, COPA one per
question with its two choices. Labels index ``LABELS[task]`` or, for COPA/ReCoRD, ``choices``.

Template fields per task (``bare`` = final punctuation removed, ``_lc`` = also first letter lower-cased):
BoolQ passage, question | CB/RTE premise, hypothesis, hypothesis_bare | WiC word, sentence1,
sentence2 | WSC text, text_marked (pronoun as ``*it*``), pronoun, target (the referent), text_t5, target_t5 | COPA
premise, premise_bare, choice1, choice2, choice1_lc, choice2_lc, question, connective
(" because" / ", so"), joiner ("because" / "so") | MultiRC passage, question, answer | ReCoRD passage (``@highlight`` lines as
"- "), query, query_left, query_right (the query split at ``@placeholder``), passage_t5, entities_t5. MultiRC also
paragraph_t5, question_t5, answer_t5. ``*_t5``: T5's text-to-text formats (:mod:`bench.superglue.t5_fields`).
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError
from bench.io_utils import read_jsonl
from bench.paths import data_dir
from bench.superglue import t5_fields

TASKS = ("BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC")
LABELS: dict[str, tuple[str, ...] | None] = {
    "BoolQ": ("False", "True"), "CB": ("entailment", "contradiction", "neutral"), "COPA": None,
    "MultiRC": ("0", "1"), "ReCoRD": None, "RTE": ("entailment", "not_entailment"), "WiC": ("False", "True"),
    "WSC": ("False", "True"),
}
VARIANTS = {"fewglue": ("train", "dev32", "val", "unlabeled"), "superglue": ("train", "heldout", "val")}
PREP_FIX = "run `make data` (python -m data_prep superglue) to prepare data/superglue and data/fewglue"


@dataclass(frozen=True)
class Example:
    """One decision: template fields, gold label index, and per-example choices when the task has them."""

    task: str
    uid: str
    fields: Mapping[str, str]
    label: int | None
    choices: tuple[str, ...] = ()  # COPA / ReCoRD candidates; empty for fixed-label tasks
    group: str | None = None  # MultiRC question, ReCoRD query: metrics aggregate over it
    answers: tuple[str, ...] = ()  # ReCoRD gold answer texts
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_options(self) -> int:
        labels = LABELS[self.task]
        return len(self.choices) if labels is None else len(labels)


def canonical_task(name: str) -> str:
    for task in TASKS:
        if task.lower() == str(name).lower():
            return task
    raise ConfigError(f"unknown SuperGLUE task {name!r}; expected one of {', '.join(TASKS)}")


def bare(text: str) -> str:
    """Final punctuation removed (PET's ``remove_final_punc``)."""
    return text.rstrip(string.punctuation)


def lcfirst(text: str) -> str:
    return text[:1].lower() + text[1:]


def _label_index(task: str, value: Any) -> int | None:
    if value is None:
        return None
    labels = LABELS[task]
    key = str(value)
    if key in ("true", "false"):
        key = key.capitalize()
    if labels is None:
        return int(value)
    if key not in labels:
        raise DataError(f"{task} label {value!r} is not one of {labels}", field="label", fix=PREP_FIX)
    return labels.index(key)


def _wsc_fields(row: Mapping[str, Any]) -> dict[str, str]:
    """Pronoun marked with asterisks (PET); off-by-one span2 indices are repaired as PET does."""
    target = row["target"]
    words = str(row["text"]).split()
    pronoun, index = str(target["span2_text"]), int(target["span2_index"])
    if not (0 <= index < len(words)) or words[index] != pronoun:
        for offset in (-1, 1):
            if 0 <= index + offset < len(words) and words[index + offset] == pronoun:
                index += offset
                break
    if 0 <= index < len(words) and words[index].startswith(pronoun):  # PET splits "him," into "him" ","
        rest = words[index][len(pronoun):]
        words[index] = f"*{pronoun}* {rest}" if rest else f"*{pronoun}*"
    marked = " ".join(words)
    return {"text": str(row["text"]), "text_marked": marked, "pronoun": pronoun, "target": str(target["span1_text"]),
            **t5_fields.wsc_fields(row)}


def _record_examples(row: Mapping[str, Any], uid: str) -> list[Example]:
    text = str(row["passage"]["text"])
    entities = list(dict.fromkeys(text[int(e["start"]) : int(e["end"]) + 1] for e in row["passage"]["entities"]))
    passage = text.replace("@highlight\n", "- ")  # PET follows GPT-3 here
    t5 = {"passage_t5": t5_fields.record_passage(text),
          "entities_t5": ", ".join(t5_fields.record_entities(text, row["passage"]["entities"]))}
    out = []
    for qa in row["qas"]:
        query = str(qa["query"])
        if "@placeholder" not in query:
            raise DataError(f"ReCoRD query has no @placeholder: {query!r}", field="qas.query", fix=PREP_FIX)
        left, right = query.split("@placeholder", 1)
        answers = tuple(dict.fromkeys(str(a["text"]) for a in qa.get("answers", [])))
        label = next((i for i, e in enumerate(entities) if e in answers), None)
        fields = {"passage": passage, "query": query, "query_left": left, "query_right": right, **t5}
        out.append(Example("ReCoRD", f"{uid}-q{qa['idx']}", fields, label, tuple(entities),
                           group=f"{uid}-q{qa['idx']}", answers=answers))
    return out


def examples_from_row(task: str, row: Mapping[str, Any], uid: str) -> list[Example]:
    """The examples of one JSONL row (several for MultiRC and ReCoRD)."""
    label = _label_index(task, row.get("label")) if task not in ("MultiRC", "ReCoRD") else None
    if task == "BoolQ":
        fields = {"passage": row["passage"], "question": row["question"]}
    elif task in ("CB", "RTE"):
        fields = {"premise": row["premise"], "hypothesis": row["hypothesis"], "hypothesis_bare": bare(row["hypothesis"])}
    elif task == "WiC":
        fields = {"word": row["word"], "sentence1": row["sentence1"], "sentence2": row["sentence2"]}
    elif task == "WSC":
        fields = _wsc_fields(row)
    elif task == "COPA":
        choices = (lcfirst(bare(row["choice1"])), lcfirst(bare(row["choice2"])))
        fields = {"premise": row["premise"], "premise_bare": bare(row["premise"]), "choice1": row["choice1"],
                  "choice2": row["choice2"], "choice1_lc": choices[0], "choice2_lc": choices[1],
                  "question": row["question"], "connective": " because" if row["question"] == "cause" else ", so",
                  "joiner": "because" if row["question"] == "cause" else "so"}  # PT-Fewshot's own word (task_pvps.py)
        return [Example(task, uid, fields, label, choices)]
    elif task == "MultiRC":
        out = []
        for q in row["passage"]["questions"]:
            for a in q["answers"]:
                fields = {"passage": row["passage"]["text"], "question": q["question"], "answer": a["text"],
                          "paragraph_t5": t5_fields.multirc_text(row["passage"]["text"]),
                          "question_t5": t5_fields.multirc_text(q["question"]),
                          "answer_t5": t5_fields.multirc_text(a["text"])}
                out.append(Example(task, f"{uid}-q{q['idx']}-a{a['idx']}", fields, _label_index(task, a.get("label")),
                                   group=f"{uid}-q{q['idx']}"))
        return out
    elif task == "ReCoRD":
        return _record_examples(row, uid)
    else:
        raise ConfigError(f"unknown SuperGLUE task {task!r}")
    return [Example(task, uid, {k: str(v) for k, v in fields.items()}, label)]


def parse_rows(task: str, rows: Sequence[Mapping[str, Any]], split: str) -> list[Example]:
    out: list[Example] = []
    for number, row in enumerate(rows):
        out.extend(examples_from_row(task, row, f"{split}-{row.get('idx', number)}"))
    return out


def split_file(task: str, split: str, variant: str, root: Path | None = None) -> Path:
    """Where a split's rows live in the prepared data (``heldout`` shares the train file)."""
    task, root = canonical_task(task), root or data_dir()
    if variant not in VARIANTS:
        raise ConfigError(f"unknown SuperGLUE variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if split not in VARIANTS[variant]:
        raise ConfigError(f"variant {variant!r} has splits {', '.join(VARIANTS[variant])}, not {split!r}")
    if split == "val":
        return root / "superglue" / task / "val.jsonl"
    if variant == "superglue":
        return root / "superglue" / task / "train.jsonl"
    return root / "fewglue" / task / f"{split}.jsonl"


def _heldout_rows(rows: list, task: str, fraction: float) -> set[int]:
    n_held = max(1, round(len(rows) * fraction))
    order = list(range(len(rows)))
    random.Random(f"superglue-heldout-{task}").shuffle(order)
    return set(order[:n_held])


def load_split(task: str, split: str, variant: str = "fewglue", *, root: Path | None = None,
               heldout_fraction: float = 0.1, limit: int | None = None) -> list[Example]:
    """Examples of one split; ``limit`` keeps the first N rows (passages for MultiRC/ReCoRD)."""
    task = canonical_task(task)
    path = split_file(task, split, variant, root)
    if not path.is_file():
        raise DataError(f"{task} {variant}/{split} is not prepared (the prepared data has no such file; "
                        "see data_prep/superglue/README.md for the known gaps)", file=path, fix=PREP_FIX)
    rows = read_jsonl(path, fix=PREP_FIX)
    numbered = list(enumerate(rows, start=1))  # line numbers of the file (blank lines aside)
    if variant == "superglue" and split in ("train", "heldout"):
        held = _heldout_rows(rows, task, heldout_fraction)
        numbered = [(n, r) for n, r in numbered if (n - 1 in held) == (split == "heldout")]
    if limit:
        numbered = numbered[: int(limit)]
    out: list[Example] = []
    for number, (line, row) in enumerate(numbered):
        try:
            out.extend(examples_from_row(task, row, f"{split}-{row.get('idx', number)}"))
        except KeyError as err:
            raise DataError(f"{task} row has no field {err.args[0]!r}", file=path, line=line, field=str(err.args[0]),
                            fix=PREP_FIX) from None
        except (TypeError, ValueError) as err:
            raise DataError(f"malformed {task} row ({err!r})", file=path, line=line, fix=PREP_FIX) from None
    return out


# training views (PET) ---------------------------------------------------------------------------
def copa_mirrored(examples: Sequence[Example]) -> list[Example]:
    """PET doubles COPA's training set with the two choices swapped (label flipped)."""
    mirrored = []
    for ex in examples:
        f = ex.fields
        fields = {**f, "choice1": f["choice2"], "choice2": f["choice1"], "choice1_lc": f["choice2_lc"],
                  "choice2_lc": f["choice1_lc"]}
        label = None if ex.label is None else 1 - ex.label
        mirrored.append(replace(ex, uid=ex.uid + "-m", fields=fields, label=label, choices=ex.choices[::-1]))
    return [*examples, *mirrored]


def record_training_view(examples: Sequence[Example], max_candidates: int = 10, seed: int = 42) -> list[Example]:
    """PET's ReCoRD training examples: one per gold answer, that answer first plus at most
    ``max_candidates - 1`` shuffled non-answer entities; the gold label is choice 0."""
    rng = random.Random(seed)
    out = []
    for ex in examples:
        negatives = [c for c in ex.choices if c not in ex.answers]
        for i, answer in enumerate(ex.answers):
            cands = list(negatives)
            if len(cands) > max_candidates - 1:
                rng.shuffle(cands)
                cands = cands[: max_candidates - 1]
            out.append(replace(ex, uid=f"{ex.uid}-a{i}", choices=(answer, *cands), label=0, answers=(answer,)))
    return out


def classifier_pairs(example: Example, sep: str = "") -> list[tuple[str, str | None]]:
    """Plain text (pair) inputs for a classifier head, one per option for COPA/ReCoRD (PET's
    sequence-classifier inputs; COPA and ReCoRD are scored as multiple choice, one sequence each)."""
    f, task = example.fields, example.task
    if task == "BoolQ":
        return [(f["passage"], f["question"])]
    if task in ("CB", "RTE"):
        return [(f["premise"], f["hypothesis"])]
    if task == "WiC":
        return [(f"{f['word']}: {f['sentence1']}", f["sentence2"])]
    if task == "WSC":
        return [(f["text_marked"], f["target"])]
    if task == "MultiRC":
        return [(f["passage"], " ".join(p for p in (f["question"], sep, f["answer"]) if p))]
    if task == "COPA":
        return [(f"{f['premise_bare']}{f['connective']} {choice}", None) for choice in example.choices]
    if task == "ReCoRD":
        return [(f["passage"], f"{f['query_left']}{choice}{f['query_right']}") for choice in example.choices]
    raise ConfigError(f"unknown SuperGLUE task {task!r}")
