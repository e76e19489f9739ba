"""Per-task field checks and label normalisation for SuperGLUE-format rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_prep.common import want

TOP_FIELDS = {
    "BoolQ": ("question", "passage", "idx"),
    "CB": ("premise", "hypothesis", "idx"),
    "COPA": ("premise", "choice1", "choice2", "question", "idx"),
    "MultiRC": ("idx", "passage"),
    "ReCoRD": ("source", "passage", "qas", "idx"),
    "RTE": ("premise", "hypothesis", "idx"),
    "WiC": ("word", "sentence1", "sentence2", "start1", "end1", "start2", "end2", "idx"),
    "WSC": ("text", "target", "idx"),
}
STRING_LABELS = {"CB": ("entailment", "contradiction", "neutral"), "RTE": ("entailment", "not_entailment")}
BOOL_TASKS = ("BoolQ", "WiC", "WSC")
_BOOL = {True: True, False: False, "True": True, "False": False, "true": True, "false": False}


def _bool(value: Any, path: Path, line: int, name: str) -> bool:
    ok = isinstance(value, bool) or (isinstance(value, str) and value in _BOOL)
    want(ok, f"expected a boolean label, got {value!r}", path, line, name)
    return _BOOL[value]


def _binary(value: Any, path: Path, line: int, name: str) -> int:
    """0/1 as int; accepts bools and the strings "0"/"1"."""
    ok = value in (0, 1, "0", "1") and not isinstance(value, float)
    want(ok, f"expected 0 or 1, got {value!r}", path, line, name)
    return int(value)


def _multirc(row: dict[str, Any], labeled: bool, path: Path, line: int) -> None:
    passage = row["passage"]
    want(isinstance(passage, dict) and isinstance(passage.get("text"), str), "expected {text, questions}",
         path, line, "passage.text")
    questions = passage.get("questions")
    want(isinstance(questions, list) and bool(questions), "expected a non-empty list", path, line, "passage.questions")
    for qi, q in enumerate(questions):
        where = f"passage.questions[{qi}]"
        want(isinstance(q, dict) and isinstance(q.get("question"), str), "expected a question string", path, line,
             f"{where}.question")
        want(isinstance(q.get("answers"), list) and bool(q["answers"]), "expected a non-empty list", path, line,
             f"{where}.answers")
        for ai, ans in enumerate(q["answers"]):
            name = f"{where}.answers[{ai}]"
            want(isinstance(ans, dict) and isinstance(ans.get("text"), str), "expected an answer text", path, line,
                 f"{name}.text")
            if labeled or "label" in ans:
                want("label" in ans, "required field is missing", path, line, f"{name}.label")
                ans["label"] = _binary(ans["label"], path, line, f"{name}.label")


def _record(row: dict[str, Any], labeled: bool, path: Path, line: int) -> None:
    passage = row["passage"]
    want(isinstance(passage, dict) and isinstance(passage.get("text"), str), "expected {text, entities}",
         path, line, "passage.text")
    want(isinstance(passage.get("entities"), list), "expected a list", path, line, "passage.entities")
    want(isinstance(row["qas"], list) and bool(row["qas"]), "expected a non-empty list", path, line, "qas")
    for qi, qa in enumerate(row["qas"]):
        want(isinstance(qa, dict) and isinstance(qa.get("query"), str), "expected a query string", path, line,
             f"qas[{qi}].query")
        if labeled:
            want(isinstance(qa.get("answers"), list), "expected a list of answers", path, line, f"qas[{qi}].answers")


def normalise(task: str, row: dict[str, Any], labeled: bool, path: Path, line: int) -> dict[str, Any]:
    """Check ``row`` for ``task`` and return it with a normalised label (row order of keys kept)."""
    for name in TOP_FIELDS[task]:
        want(row.get(name) is not None, "required field is missing", path, line, name)
    if task == "MultiRC":
        _multirc(row, labeled, path, line)
        return row
    if task == "ReCoRD":
        _record(row, labeled, path, line)
        return row
    if task == "WSC":
        target = row["target"]
        for key in ("span1_index", "span1_text", "span2_index", "span2_text"):
            want(isinstance(target, dict) and key in target, "required field is missing", path, line, f"target.{key}")
    if task == "COPA":
        want(row["question"] in ("cause", "effect"), f"expected cause/effect, got {row['question']!r}",
             path, line, "question")
    if not labeled and "label" not in row:
        return row
    want("label" in row, "required field is missing", path, line, "label")
    if task in BOOL_TASKS:
        row["label"] = _bool(row["label"], path, line, "label")
    elif task == "COPA":
        row["label"] = _binary(row["label"], path, line, "label")
    else:
        want(row["label"] in STRING_LABELS[task], f"expected one of {STRING_LABELS[task]}, got {row['label']!r}",
             path, line, "label")
    return row


def multirc_counts(rows: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(passages, questions, answer options)."""
    questions = [q for r in rows for q in r["passage"]["questions"]]
    return len(rows), len(questions), sum(len(q["answers"]) for q in questions)
