"""Label-space inputs (``mode: labels``, e.g. ``method=finetune`` and PET's distilled classifier): token ids of
plain text pairs, in the form a reference feeds its tokenizer (:mod:`bench.superglue.classifier_inputs`).

COPA has two forms (``task.copa_classifier_inputs``):

- ``choices``: one sequence per choice ("premise, so choice"), one logit each (a multiple-choice head);
- ``pet_pair``: PET's sequence classifier (timoschick/pet ``CopaTaskHelper.get_sequence_classifier_inputs``):
  ONE pair (premise without its final punctuation, the joiner "because" (cause) / "so" (effect), choice 1
  with its first letter lower-cased and its final punctuation kept; the same with choice 2) read by a
  2-label classifier: label 0 = choice 1, label 1 = choice 2, the order of the PET ensemble's soft labels.
"""

from __future__ import annotations

from collections.abc import Mapping

from bench.errors import ConfigError
from bench.superglue import data as sg
from bench.superglue.batching import Item
from bench.superglue.classifier_inputs import classifier_pairs

COPA_FORMS = ("choices", "pet_pair")  # task.copa_classifier_inputs


def copa_form(task_cfg: Mapping) -> str:
    """``task.copa_classifier_inputs``, checked (``choices`` when unset); ``pet_pair`` needs PET's inputs."""
    form = str(task_cfg.get("copa_classifier_inputs") or "choices")
    if form not in COPA_FORMS:
        raise ConfigError(f"task.copa_classifier_inputs={form!r} is not allowed; use one of {', '.join(COPA_FORMS)}")
    if form == "pet_pair" and str(task_cfg.get("classifier_inputs") or "pet") != "pet":
        raise ConfigError("task.copa_classifier_inputs=pet_pair is PET's classifier input: it needs "
                          f"task.classifier_inputs=pet, not {task_cfg.get('classifier_inputs')!r}")
    return form


def copa_pet_pair(example: sg.Example) -> tuple[str, str]:
    """PET's one COPA pair: ("premise joiner choice1", "premise joiner choice2")."""
    f = example.fields
    head = f"{sg.bare(f['premise'])} {'because' if f['question'] == 'cause' else 'so'}"
    return f"{head} {sg.lcfirst(f['choice1'])}", f"{head} {sg.lcfirst(f['choice2'])}"


def classifier_item(example: sg.Example, tok, task_cfg: Mapping, model_type: str | None, max_length: int) -> Item:
    """One example's classifier sequences (one per option for multiple choice) and the segment ids passed."""
    sep = getattr(tok, "sep_token", None) or ""
    form = str(task_cfg.get("classifier_inputs") or "pet")
    if example.task == "COPA" and copa_form(task_cfg) == "pet_pair":
        pairs: list[tuple[str, str | None]] = [copa_pet_pair(example)]
    else:
        pairs = classifier_pairs(example, form, int(task_cfg.get("classifier_template") or 0), sep)
    encoded = [tok(a, b, truncation=True, max_length=max_length) if b is not None else
               tok(a, truncation=True, max_length=max_length) for a, b in pairs]
    # segments as the reference passes them: P-tuning-v2 whatever its tokenizer returns (BERT's);
    # PET only to bert / xlnet (wrapper.generate_default_inputs), so ALBERT reads segment 0
    pass_types = form == "ptv2" or model_type in ("bert", "xlnet")
    types = [list(e["token_type_ids"]) for e in encoded if "token_type_ids" in e and pass_types]
    return Item(example, sequences=[list(e["input_ids"]) for e in encoded],
                types=types if len(types) == len(encoded) else [])
