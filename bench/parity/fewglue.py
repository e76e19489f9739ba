"""FewGLUE parity by execution: PET's own preprocessing (timoschick/pet) beside the suite's inputs.

``python -m bench.parity fewglue --ref /path/to/pet [--models tiny-albert,tiny-roberta,tiny-bert]``
exports each tiny model's tokenizer in the files PET's slow tokenizers read, picks the rows
(:func:`selection`), runs ``fewglue_ref.py`` in PET's environment and writes one golden file per
model and task (``inputs_<model>_<task>``): per PET pattern and split, per example the input ids,
the token_type_ids PET hands the model, the attention length, the mask positions, the label and
each choice's (position, token id) targets, plus the label words' ids. :func:`compare` sets the
suite's inputs for the same rows beside them (CI: ``tests/parity/test_fewglue_inputs.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bench.io_utils import read_jsonl
from bench.parity.fewglue_tokenizers import MODELS
from bench.parity.golden import load_golden
from bench.parity.refenv import RefSpec
from bench.paths import REPO_ROOT, data_dir

STUDY = "fewglue"
SPEC = RefSpec(
    name="pet-21d32de", repo="timoschick/pet", commit="21d32de", python="3.7",
    requirements=("numpy==1.19.5", "jsonpickle==1.1", "scikit-learn==0.23.1", "torch==1.5.0",
                  "transformers==3.0.2", "tqdm==4.48.1", "sentencepiece==0.1.91"),
    patches=(),  # PET's code runs unpatched; the driver builds its wrapper's two fields (tokenizer, config) itself
)
PET_TASK = {"BoolQ": "boolq", "CB": "cb", "COPA": "copa", "MultiRC": "multirc", "ReCoRD": "record", "RTE": "rte",
            "WiC": "wic", "WSC": "wsc"}
N_VAL, N_LONGEST = 50, 3  # val rows: the first 50 and the 3 longest of the rest (truncation cases)
N_VAL_MULTIRC = 4  # MultiRC rows are passages of ~20 answer options each: 4 + 1 longest give > 50 examples
SET_TYPE = {"train": "train", "val": "dev"}  # PET's set_type per split (WSC/COPA/ReCoRD treat "train" apart)
SPEC_PT = RefSpec(
    name="ptfewshot-f4225d4", repo="THUDM/P-tuning", commit="f4225d4", python="3.7",
    requirements=(*SPEC.requirements, "tensorboardX==2.1", "protobuf==3.20.3"),  # its wrapper imports tensorboardX
    patches=(),  # PT-Fewshot's code runs unpatched (PYTHONPATH = the checkout's PT-Fewshot/)
)


@dataclass(frozen=True)
class Reference:
    """One reference code base: its environment, the suite presets and templates it is compared with."""

    spec: RefSpec
    preset: str  # conf/experiment/<preset><task>.yaml
    template: str  # conf/template/<template><task>.yaml
    tasks: tuple[str, ...]
    golden: str  # golden files <golden>_<model>_<task>
    subdir: str = ""  # the code's folder inside the checkout (on PYTHONPATH)


REFERENCES = {
    "pet": Reference(SPEC, "fewglue_pet_", "pet_", tuple(PET_TASK), "inputs"),
    "ptfewshot": Reference(SPEC_PT, "fewglue_ptuning_", "ptuning_", tuple(t for t in PET_TASK if t != "ReCoRD"),
                           "ptfewshot", "PT-Fewshot"),  # PT-Fewshot has no ReCoRD script
}


def patterns(task: str, ref: str = "pet") -> list[int]:
    """Pattern ids of the suite's ``conf/template/<pet|ptuning>_<task>.yaml``."""
    name = f"{REFERENCES[ref].template}{task.lower()}.yaml"
    cfg = yaml.safe_load((REPO_ROOT / "conf" / "template" / name).read_text())
    return sorted(int(k) for k in cfg["texts"])


def _longest(rows: Sequence[str], start: int, n: int) -> list[int]:
    rest = sorted(range(start, len(rows)), key=lambda i: (-len(rows[i]), i))
    return sorted(rest[:n])


def selection(task: str, root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Which rows of which prepared file each split encodes: ``{split: {file, lines}}`` (file relative to data/)."""
    root = root or data_dir()
    out = {"train": {"file": f"fewglue/{task}/train.jsonl"}}
    val = f"superglue/{task}/val.jsonl" if task != "ReCoRD" else f"fewglue/{task}/dev32.jsonl"
    out["val"] = {"file": val}
    train_lines = (root / out["train"]["file"]).read_text(encoding="utf-8").splitlines()
    out["train"]["lines"] = list(range(len(train_lines)))
    val_lines = (root / val).read_text(encoding="utf-8").splitlines()
    first = N_VAL_MULTIRC if task == "MultiRC" else N_VAL
    extra = 1 if task == "MultiRC" else N_LONGEST
    out["val"]["lines"] = list(range(min(first, len(val_lines)))) + _longest(val_lines, first, extra)
    return out


def _rows(spec: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    rows = read_jsonl(root / spec["file"])
    return [rows[i] for i in spec["lines"]]


def stage_inputs() -> dict[str, Any]:
    """Fixed numbers for PET's second stage: 4 pattern models' logits on 60 unlabeled examples (3 labels),
    their train accuracies before training, a student's logits, 32 training labels, iPET's generation 1."""
    import numpy as np

    rng = np.random.RandomState(0)
    n_models, n_unlabeled, n_labels = 4, 60, 3
    return {
        "logits": rng.normal(0.0, 2.0, (n_models, n_unlabeled, n_labels)).round(6).tolist(),
        "train_accuracy": [0.5, 0.75, 0.25, 0.625],
        "student_logits": rng.normal(0.0, 1.5, (n_unlabeled, n_labels)).round(6).tolist(),
        "temperature": 2.0,
        "train_labels": [0] * 10 + [1] * 14 + [2] * 8,
        "num_new_examples": 128,  # int(32 * 5**1 - 32): generation 1 (cli.py: scale factor 5)
        "logits_percentage": 0.25,
    }


def compare_stage() -> dict[str, float | bool]:
    """The suite's ensemble, soft labels, distillation loss and iPET per-label counts against PET's."""
    import torch

    from bench.parity.golden import max_rel_diff
    from bench.superglue import data as sg
    from bench.superglue.ipet import examples_per_label
    from bench.superglue.pet import distillation_loss, ensemble_logits, soft_targets

    gold = load_golden(STUDY, "stage")
    spec, pet = gold["inputs"], gold["pet"]
    logits = [torch.tensor(x, dtype=torch.float64) for x in spec["logits"]]
    wmean = ensemble_logits(logits, spec["train_accuracy"], "wmean")
    mean = ensemble_logits(logits, spec["train_accuracy"], "mean")
    merged32 = wmean.float()
    soft = soft_targets(merged32, spec["temperature"])
    loss = distillation_loss(torch.tensor(spec["student_logits"]), merged32, spec["temperature"])
    train = [sg.Example("CB", f"t{i}", {}, label) for i, label in enumerate(spec["train_labels"])]
    per_label = examples_per_label(train, len(spec["logits"][0][0]), spec["num_new_examples"])
    return {
        "merged_wmean": max_rel_diff(wmean.tolist(), pet["merged_wmean"]),
        "merged_mean": max_rel_diff(mean.tolist(), pet["merged_mean"]),
        "soft_labels": max_rel_diff(soft.tolist(), pet["soft_labels"]),
        "distillation_loss": max_rel_diff(loss.item(), pet["distillation_loss"]),
        "ipet_per_label": all(v == per_label for v in pet["ipet_per_label"].values()) and len(pet["ipet_per_label"]) == 4,
    }


def max_seq_length(model: str, task: str, ref: str = "pet") -> int:
    """The preset's ``task.max_length``, at most the tiny model's 256 positions (MultiRC/ReCoRD's 512 is cut
    to 256 on both sides)."""
    return min(int(_composed(model, task, ref)["task"]["max_length"]), 256)


# the suite side ----------------------------------------------------------------------------------------------------
@cache
def _backbone(model: str, ref: str = "pet"):
    """One backbone per reference (a method's setup may change it: P-Tuning adds its prompt encoder)."""
    from bench.backbones import load_backbone, load_model_config

    return load_backbone(load_model_config(model), device="cpu", dtype="fp32")


@cache
def _composed(model: str, task: str, ref: str = "pet") -> dict[str, Any]:
    from omegaconf import OmegaConf

    from bench.study import compose_job, hydra_context

    with hydra_context():
        cfg = compose_job(f"{REFERENCES[ref].preset}{task.lower()}", model, [])
    return OmegaConf.to_container(cfg, resolve=True)


@cache
def suite_task(model: str, task: str, pattern: int, ref: str = "pet"):
    """The suite's ClassificationTask of ``experiment=fewglue_<pet|ptuning>_<task>`` for one pattern on ``model``."""
    import copy

    from hydra.utils import instantiate

    from bench.superglue.task import ClassificationTask

    cfg = copy.deepcopy(_composed(model, task, ref))
    cfg["template"]["rank"] = pattern
    backbone = _backbone(model, ref)
    method = instantiate(cfg["method"]["component"])
    method.setup(backbone)
    return ClassificationTask(cfg, backbone, method)


def suite_records(model: str, task: str, pattern: int, split: str, rows: Sequence[dict[str, Any]],
                  ref: str = "pet") -> tuple[list[dict[str, Any]], list[list[int]] | None]:
    """The suite's inputs for ``rows`` in the golden files' form, and the label words' ids (one row per label)."""
    from bench.superglue import data as sg

    runner = suite_task(model, task, pattern, ref)
    train = split == "train"
    examples = sg.parse_rows(task, rows, split)
    view = runner._train_view(examples) if train else examples
    pads = runner._pet_pad_draws(len(view)) if train and runner.mode == "span" else [None] * len(view)
    out = []
    for ex, n in zip(view, pads, strict=True):
        item = runner._item(ex, train, n)
        record: dict[str, Any] = {"label": ex.label if ex.label is not None else -100}
        if item.rendered is not None:
            r = item.rendered
            record.update(input_ids=_blank(r.input_ids, r.soft_positions), soft_positions=list(r.soft_positions),
                          attention_len=len(r.input_ids),
                          token_type_ids=list(r.token_type_ids) if runner.passes_segment_ids and r.token_type_ids
                          and any(r.token_type_ids) else None,
                          mask_positions=list(r.target_positions))
        else:
            first = item.entries[0]
            mask = runner.tok.mask_token_id
            opts = [{"input_ids": _blank(e.input_ids, e.soft_positions),
                     "targets": [[p, int(t)] for p, t in zip(e.target_positions, e.token_ids, strict=True)]}
                    for e in item.entries]
            ids = _blank(first.input_ids, first.soft_positions)
            record.update(input_ids=ids, attention_len=len(ids), token_type_ids=None,
                          soft_positions=list(first.soft_positions),
                          mask_positions=[i for i, t in enumerate(ids) if t == mask])
            if task == "ReCoRD":
                record["options"] = dict(zip(ex.choices, opts, strict=True))
            else:
                record["options"] = opts
        out.append(record)
    words = None
    if runner.mode == "words":
        words = runner.word_table().tolist()
    return out, words


FIELDS = ("input_ids", "token_type_ids", "attention_len", "mask_positions", "soft_positions", "label", "options")


def _blank(ids: Sequence[int], soft: Sequence[int]) -> list[int]:
    """Ids with the pseudo-token positions as -1: the prompt encoder's output replaces whatever id is there."""
    hidden = set(soft)
    return [-1 if i in hidden else int(t) for i, t in enumerate(ids)]


def normalise(task: str, record: dict[str, Any], train: bool) -> dict[str, Any]:
    """What both sides must agree on, in one form (PET's labels: a label index; choice tasks: per option)."""
    out = {k: record.get(k) for k in FIELDS}
    out["soft_positions"] = out["soft_positions"] or []
    if task == "ReCoRD":
        out["label"] = None  # PET's ReCoRD label is always "1"; the gold is which options are answers
        if not train:  # PET's evaluation input carries the longest candidate's masks; each option trims them
            out["input_ids"] = out["mask_positions"] = out["attention_len"] = None
    if task == "COPA" and not train:
        out["input_ids"] = out["mask_positions"] = out["attention_len"] = None  # as ReCoRD: per option
    if task in ("COPA", "ReCoRD") and train:
        out["label"] = None  # PET scores choice 0/1 by its own label index; the options carry the targets
    if task == "WSC":
        out["label"] = None  # WSC trains positives only; evaluation decodes the masks
    return out


@cache
def golden(model: str, task: str, ref: str = "pet") -> dict[str, Any]:
    return load_golden(STUDY, f"{REFERENCES[ref].golden}_{model}_{task}")


def compare(model: str, task: str, pattern: int, split: str, ref: str = "pet") -> dict[str, Any]:
    """Suite vs reference for one model x task x pattern x split: counts of identical examples per field."""
    gold = golden(model, task, ref)
    entry = gold["patterns"][str(pattern)]
    theirs_split = entry["splits"][split]
    if "error" in theirs_split:
        return {"n": 0, "error": theirs_split["error"]}
    rows = _rows(gold["selection"][split], data_dir())
    ours, words = suite_records(model, task, pattern, split, rows, ref)
    theirs = theirs_split["examples"]
    train = split == "train"
    result: dict[str, Any] = {"n": len(theirs), "n_suite": len(ours), "identical": 0,
                              "fields": {k: 0 for k in FIELDS}, "first_difference": None}
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        na, nb = normalise(task, a, train), normalise(task, b, train)
        same = True
        for key in FIELDS:
            if na[key] == nb[key]:
                result["fields"][key] += 1
            else:
                same = False
                if result["first_difference"] is None:
                    result["first_difference"] = f"{split}[{i}] ({b.get('guid')}) {key}: suite {_short(na[key], nb[key])} " \
                                                 f"vs PET {_short(nb[key], na[key])}"
        result["identical"] += same
    if len(ours) != len(theirs) and result["first_difference"] is None:
        result["first_difference"] = f"{split}: suite has {len(ours)} examples, PET {len(theirs)}"
    result["label_words_identical"] = words is None or entry.get("label_token_ids") is None or \
        [[t for t in row if t >= 0] for row in entry["label_token_ids"]] == [[t for t in row if t >= 0] for row in words]
    return result


def _short(value: Any, other: Any = None, limit: int = 120) -> str:
    """A value for a message; for two id lists, the stretch around their first difference."""
    if isinstance(value, list) and isinstance(other, list) and value and all(isinstance(v, int) for v in value):
        i = next((k for k, (a, b) in enumerate(zip(value, other, strict=False)) if a != b), min(len(value), len(other)))
        return f"@{i}: {value[max(0, i - 3): i + 4]}"
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def table(models: Sequence[str] = tuple(MODELS), ref: str = "pet") -> str:
    """The docs/parity.md table: per model x task x pattern, identical inputs n/n per split."""
    lines = ["| backbone | task | pattern | train identical | val identical | label words | first difference |",
             "|---|---|---|---|---|---|---|"]
    for model in models:
        for task in REFERENCES[ref].tasks:
            for pattern in patterns(task, ref):
                cells, first, words = [], "", True
                for split in ("train", "val"):
                    res = compare(model, task, pattern, split, ref)
                    if "error" in res:
                        cells.append("reference refuses")
                        first = first or res["error"]
                        continue
                    cells.append(f"{res['identical']}/{res['n']}")
                    first = first or (res["first_difference"] or "")
                    words = words and res["label_words_identical"]
                lines.append(f"| {model} | {task} | {pattern} | {cells[0]} | {cells[1]} | {'=' if words else 'differ'} "
                             f"| {first.replace('|', '/')[:140]} |")
    return "\n".join(lines)
