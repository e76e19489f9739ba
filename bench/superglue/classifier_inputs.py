"""Plain (text_a, text_b) inputs for a classifier head, in the form a reference feeds its tokenizer.

``task.classifier_inputs`` picks the form (checked by ``tests/parity/test_superglue_inputs.py``
against the references' own code):

- ``pet`` (default; FewGLUE's CLS fine-tuning): PET's sequence-classifier inputs,
  :func:`bench.superglue.data.classifier_pairs`.
- ``ptv2``: THUDM/P-tuning-v2 @b1520c9 ``tasks/superglue/dataset.py`` (``preprocess_function``):
  BoolQ (question, passage); CB/RTE (premise, hypothesis); MultiRC (passage, "question answer");
  WSC "pronoun: text" with the referent; COPA one pair per choice, ("premise because|so", choice),
  scored by a multiple-choice head; WiC by ``task.classifier_template`` (its ``--template_id``):
  0 = one sequence "s1 s2 Does w have the same meaning in both sentences?" (its RoBERTa scripts and
  its default), 1 = the pair ("w: s1", "w: s2") (``run_wic_bert.sh``).
"""

from __future__ import annotations

from bench.errors import ConfigError
from bench.superglue import data as sg

FORMS = ("pet", "ptv2")


def ptv2_pairs(example: sg.Example, template_id: int = 0) -> list[tuple[str, str | None]]:
    """P-tuning-v2's inputs for one example, one pair per option for COPA."""
    f, task = example.fields, example.task
    if task == "BoolQ":
        return [(f["question"], f["passage"])]
    if task in ("CB", "RTE"):
        return [(f["premise"], f["hypothesis"])]
    if task == "MultiRC":
        return [(f["passage"], f"{f['question']} {f['answer']}")]
    if task == "WiC":
        if template_id == 0:
            return [(f"{f['sentence1']} {f['sentence2']} Does {f['word']} have the same meaning in both sentences?",
                     None)]
        if template_id == 1:
            return [(f"{f['word']}: {f['sentence1']}", f"{f['word']}: {f['sentence2']}")]
    if task == "WSC" and template_id == 0:
        return [(f"{f['pronoun']}: {f['text']}", f["target"])]
    if task == "COPA":
        joiner = "because" if f["question"] == "cause" else "so"
        return [(f"{f['premise']} {joiner}", f[f"choice{k}"]) for k in (1, 2)]
    if task == "ReCoRD":
        raise ConfigError("task.classifier_inputs=ptv2 is not implemented for ReCoRD: P-tuning-v2 scores each entity "
                          "as a binary pair (passage, query with the entity), not as multiple choice; use pet")
    raise ConfigError(f"task.classifier_template={template_id} is not one of P-tuning-v2's templates for {task} "
                      "(WiC: 0 or 1; WSC: 0; other tasks: 0)")


def classifier_pairs(example: sg.Example, form: str, template_id: int, sep: str) -> list[tuple[str, str | None]]:
    """The (text_a, text_b) pairs of ``example`` in the form ``task.classifier_inputs`` names."""
    if form == "pet":
        return sg.classifier_pairs(example, sep)
    if form == "ptv2":
        return ptv2_pairs(example, template_id)
    raise ConfigError(f"task.classifier_inputs={form!r} is not allowed; use one of {', '.join(FORMS)}")
