"""PET's distilled sequence classifier's inputs (timoschick/pet ``SequenceClassifierPreprocessor``) beside the suite's.

``python -m bench.parity fewglue --ref /path/to/pet --parts classifier`` encodes, per tiny model and task, the
FewGLUE training rows (PET's own training view: COPA mirrored), SuperGLUE val rows and, for the distillation tasks,
unlabeled rows (:func:`selection`) with PET's own preprocessor and task helpers in its environment
(``fewglue_classifier_ref.py``, transformers 3.0.2's slow tokenizers) and writes golden
``classifier_<model>_<task>``: per split and example the input ids, the token_type_ids PET's wrapper passes (BERT
only), the attention length and the label. :func:`compare` builds the suite's classifier inputs
(:func:`bench.superglue.classifier_items.classifier_item`) for the same rows with the preset's ``task`` config
(CI: ``tests/parity/test_fewglue_classifier_inputs.py``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from bench.parity.fewglue import N_LONGEST, N_VAL, N_VAL_MULTIRC, PET_TASK, _longest, _rows
from bench.parity.fewglue_tokenizers import MODELS, export_tokenizer
from bench.parity.golden import load_golden, write_golden
from bench.parity.refenv import run_ref_script
from bench.paths import data_dir

STUDY = "fewglue"
DISTILLED = ("COPA", "MultiRC", "WiC")  # the tasks with fewglue_pet_distill_* / fewglue_ipet_distill_* presets
TASKS = (*DISTILLED, "BoolQ", "CB", "RTE")  # the others with the plain PET classifier config (no preset)
SET_TYPE = {"train": "train", "val": "dev", "unlabeled": "unlabeled"}  # PET's set_type (COPA mirrors train/unlabeled)
N_UNLABELED_MULTIRC = 3  # MultiRC unlabeled rows are passages of many answers: 3 + 1 longest give > 50 examples
MAX_LENGTH = 256  # PET's README SuperGLUE command: --sc_max_seq_length 256 (the tiny models' positions too)


def golden_name(model: str, task: str) -> str:
    return f"classifier_{model}_{task}"


def selection(task: str, root: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{split: {file, lines}}``: every training row, the first val / unlabeled rows and the longest of the rest."""
    root = root or data_dir()
    files = {"train": f"fewglue/{task}/train.jsonl", "val": f"superglue/{task}/val.jsonl"}
    if (root / f"fewglue/{task}/unlabeled.jsonl").is_file():
        files["unlabeled"] = f"fewglue/{task}/unlabeled.jsonl"
    out = {}
    for split, file in files.items():
        lines = (root / file).read_text(encoding="utf-8").splitlines()
        if split == "train":
            out[split] = {"file": file, "lines": list(range(len(lines)))}
            continue
        multirc = task == "MultiRC"
        first = (N_VAL_MULTIRC if split == "val" else N_UNLABELED_MULTIRC) if multirc else N_VAL
        extra = 1 if multirc else N_LONGEST
        out[split] = {"file": file, "lines": list(range(min(first, len(lines)))) + _longest(lines, first, extra)}
    return out


def regenerate(python: Path, ref: Path, head: str, work: Path, models: list[str]) -> list[Path]:
    """Run PET's ``SequenceClassifierPreprocessor`` on every model x task x split; one golden per model x task."""
    root = data_dir()
    job: dict[str, Any] = {"models": {m: {"model_type": MODELS[m], "tokenizer": export_tokenizer(m, work / f"cls-{m}")}
                                      for m in models}, "tasks": {}, "out": str(work / "classifier.json")}
    selections = {task: selection(task, root) for task in TASKS}
    for task, splits in selections.items():
        where = {}
        for split, spec in splits.items():
            path = work / f"cls-{task}-{split}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in _rows(spec, root)), encoding="utf-8")
            where[split] = [str(path), SET_TYPE[split]]
        job["tasks"][PET_TASK[task]] = {"max_seq_length": MAX_LENGTH, "splits": where}
    job_file = work / "classifier-job.json"
    job_file.write_text(json.dumps(job))
    print(f"[fewglue] classifier inputs: {len(models)} models x {len(TASKS)} tasks through PET's preprocessor",
          flush=True)
    run_ref_script(python, Path(__file__).with_name("fewglue_classifier_ref.py"), [str(job_file)], ref)
    result = json.loads((work / "classifier.json").read_text())
    written = []
    for model in models:
        for task in TASKS:
            payload = {"reference": f"timoschick/pet@{head} SequenceClassifierPreprocessor (transformers 3.0.2)",
                       "model": model, "task": task, "max_seq_length": MAX_LENGTH, "selection": selections[task],
                       "splits": result[model][PET_TASK[task]]}
            written.append(write_golden(STUDY, golden_name(model, task), payload))
    return written


# the suite side ----------------------------------------------------------------------------------------------------
@cache
def _tokenizer(model: str):
    from transformers import AutoTokenizer

    from bench.parity.fewglue_tokenizers import _snapshot

    return AutoTokenizer.from_pretrained(_snapshot(model))


@cache
def task_config(model: str, task: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``task`` block the suite's classifier reads: ``fewglue_pet_distill_<task>``'s, else ``conf/task/<task>``
    with PET's classifier settings (tokenization pet_slow, max_length 256)."""
    from omegaconf import OmegaConf

    from bench.study import compose_job, hydra_context

    preset = f"fewglue_pet_distill_{task.lower()}"
    extra = [] if task in DISTILLED else [f"task={task.lower()}", "task.tokenization=pet_slow",
                                          f"task.max_length={MAX_LENGTH}"]
    with hydra_context():
        cfg = compose_job(preset if task in DISTILLED else "fewglue_pet_distill_copa", model, [*extra, *overrides])
    out = OmegaConf.to_container(cfg, resolve=True)["task"]
    if task not in DISTILLED:
        out.pop("copa_classifier_inputs", None)
    return out


def suite_records(model: str, task: str, split: str, overrides: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The suite's classifier inputs for the golden's rows, in the golden's form (one pair per example)."""
    from bench.superglue import data as sg
    from bench.superglue.classifier_items import classifier_item

    theirs = load_golden(STUDY, golden_name(model, task))
    rows = _rows(theirs["selection"][split], data_dir())
    examples = sg.parse_rows(task, rows, split)
    if task == "COPA" and split in ("train", "unlabeled"):  # PET's processor mirrors both (tasks.py)
        examples = sg.copa_mirrored(examples)
    cfg = task_config(model, task, overrides)
    tok = _tokenizer(model)
    out = []
    for ex in examples:
        item = classifier_item(ex, tok, cfg, MODELS[model], int(cfg["max_length"]))
        ids = item.sequences[0]
        out.append({"uid": ex.uid, "input_ids": ids, "token_type_ids": item.types[0] if item.types else None,
                    "attention_len": len(ids), "label": ex.label if ex.label is not None else -100,
                    "n_sequences": len(item.sequences)})
    return out


def compare(model: str, task: str, split: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """Identical examples (input ids, token_type_ids passed, attention length, label) and the first difference."""
    theirs = load_golden(STUDY, golden_name(model, task))["splits"][split]
    ours = suite_records(model, task, split, overrides)
    keys = ("input_ids", "token_type_ids", "attention_len")
    if split != "unlabeled":
        keys += ("label",)
    same, first = 0, None
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        diff = [k for k in keys if a[k] != b[k]] + (["n_sequences"] if a["n_sequences"] != 1 else [])
        if not diff:
            same += 1
        elif first is None:
            first = {"index": i, "guid": b["guid"], "fields": diff, "ours": {k: a[k] for k in diff if k in a},
                     "theirs": {k: b[k] for k in diff if k in b}}
    return {"identical": same, "n": len(theirs), "n_suite": len(ours), "first_difference": first}
