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
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bench.io_utils import read_jsonl
from bench.parity.golden import load_golden, write_golden
from bench.parity.refenv import RefSpec, check_checkout, ensure_venv, run_ref_script
from bench.paths import REPO_ROOT, data_dir

STUDY = "fewglue"
SPEC = RefSpec(
    name="pet-21d32de", repo="timoschick/pet", commit="21d32de", python="3.7",
    requirements=("numpy==1.19.5", "jsonpickle==1.1", "scikit-learn==0.23.1", "torch==1.5.0",
                  "transformers==3.0.2", "tqdm==4.48.1", "sentencepiece==0.1.91"),
    patches=(),  # PET's code runs unpatched; the driver builds its wrapper's two fields (tokenizer, config) itself
)
MODELS = {"tiny-albert": "albert", "tiny-roberta": "roberta", "tiny-bert": "bert"}
PET_TASK = {"BoolQ": "boolq", "CB": "cb", "COPA": "copa", "MultiRC": "multirc", "ReCoRD": "record", "RTE": "rte",
            "WiC": "wic", "WSC": "wsc"}
N_VAL, N_LONGEST = 50, 3  # val rows: the first 50 and the 3 longest of the rest (truncation cases)
N_VAL_MULTIRC = 4  # MultiRC rows are passages of ~20 answer options each: 4 + 1 longest give > 50 examples
SET_TYPE = {"train": "train", "val": "dev"}  # PET's set_type per split (WSC/COPA/ReCoRD treat "train" apart)


def patterns(task: str) -> list[int]:
    """PET pattern ids of the suite's ``conf/template/pet_<task>.yaml``."""
    cfg = yaml.safe_load((REPO_ROOT / "conf" / "template" / f"pet_{task.lower()}.yaml").read_text())
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


# tokenizer files for PET's slow tokenizers ---------------------------------------------------------------------
def export_tokenizer(model: str, folder: Path) -> dict[str, Any]:
    """Write the tiny model's tokenizer as the files its slow twin reads; returns their paths."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_snapshot(model))
    spec = json.loads(tok.backend_tokenizer.to_str())
    folder.mkdir(parents=True, exist_ok=True)
    kind = MODELS[model]
    if kind == "albert":
        path = folder / "spiece.model"
        path.write_bytes(_sentencepiece_model(spec))
        return {"folder": str(folder)}
    if kind == "roberta":
        vocab, merges = folder / "vocab.json", folder / "merges.txt"
        vocab.write_text(json.dumps(spec["model"]["vocab"], ensure_ascii=False), encoding="utf-8")
        lines = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
        merges.write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")
        return {"folder": str(folder)}
    vocab = folder / "vocab.txt"
    by_id = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab.write_text("".join(f"{t}\n" for t, _ in by_id), encoding="utf-8")
    return {"folder": str(folder), "lowercase": bool(spec["normalizer"].get("lowercase"))}


def _sentencepiece_model(spec: dict[str, Any]) -> bytes:
    """A SentencePiece unigram model with the fast tokenizer's pieces and scores.

    The fast tokenizer's normalizer (quotes, NFKD, accents, lower case) is what ALBERT's slow
    ``preprocess_text`` does in Python, so the exported model normalises nothing itself.
    """
    from sentencepiece import sentencepiece_model_pb2 as sp

    model = sp.ModelProto()
    model.trainer_spec.model_type = sp.TrainerSpec.UNIGRAM
    model.trainer_spec.unk_id = int(spec["model"]["unk_id"])
    model.trainer_spec.vocab_size = len(spec["model"]["vocab"])
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = True
    model.normalizer_spec.escape_whitespaces = True
    special = {t["content"] for t in spec["added_tokens"] if t.get("special")}
    for index, (piece, score) in enumerate(spec["model"]["vocab"]):
        entry = model.pieces.add()
        entry.piece, entry.score = piece, float(score)
        if index == model.trainer_spec.unk_id:
            entry.type = sp.ModelProto.SentencePiece.UNKNOWN
        elif piece in special:
            entry.type = sp.ModelProto.SentencePiece.CONTROL
    return model.SerializeToString()


def _snapshot(model: str) -> Path:
    found = sorted((data_dir() / "models" / "hub" / f"models--bench-local--{model}" / "snapshots").glob("*/"))
    if not found:
        from bench.errors import DataError

        raise DataError(f"{model} is not built", file=data_dir() / "models" / "hub",
                        fix=f"build it: .venv/bin/python -m bench.run task=cb model={model} method=manual")
    return found[-1]


# the reference side ----------------------------------------------------------------------------------------------
def regenerate(ref: Path, args: Sequence[str]) -> list[Path]:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.parity fewglue")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated tiny models")
    parser.add_argument("--tasks", default=",".join(PET_TASK), help="comma-separated FewGLUE tasks")
    parser.add_argument("--parts", default="inputs,stage", help="inputs (per model x task) and/or stage (PET's ensemble)")
    opts = parser.parse_args(list(args))
    head = check_checkout(ref, SPEC)
    python = ensure_venv(SPEC)
    root = data_dir()
    written: list[Path] = []
    parts = opts.parts.split(",")
    with tempfile.TemporaryDirectory(prefix="fewglue-parity-") as tmp:
        work = Path(tmp)
        if "stage" in parts:
            job_file = work / "stage-job.json"
            job_file.write_text(json.dumps({"stage": stage_inputs(), "folder": str(work / "stage"),
                                            "out": str(work / "stage.json")}))
            run_ref_script(python, Path(__file__).with_name("fewglue_ref.py"), [str(job_file)], ref)
            payload = {"reference": f"{SPEC.repo}@{head}", "inputs": stage_inputs(),
                       "pet": json.loads((work / "stage.json").read_text())}
            written.append(write_golden(STUDY, "stage", payload))
        for model in opts.models.split(",") if "inputs" in parts else []:
            job: dict[str, Any] = {"model_type": MODELS[model], "max_seq_length": max_seq_length(model),
                                   "tokenizer": export_tokenizer(model, work / model), "out": str(work / f"{model}.json"),
                                   "tasks": {}}
            selections = {}
            for task in opts.tasks.split(","):
                selections[task] = selection(task, root)
                splits = {}
                for split, spec in selections[task].items():
                    path = work / f"{task}-{split}.jsonl"
                    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(spec, root)), encoding="utf-8")
                    splits[split] = [str(path), SET_TYPE[split]]
                job["tasks"][PET_TASK[task]] = {"patterns": patterns(task), "splits": splits}
            job_file = work / f"{model}-job.json"
            job_file.write_text(json.dumps(job))
            run_ref_script(python, Path(__file__).with_name("fewglue_ref.py"), [str(job_file)], ref)
            result = json.loads(Path(job["out"]).read_text())
            for task in opts.tasks.split(","):
                payload = {"reference": f"{SPEC.repo}@{head}", "model": model, "task": task,
                           "max_seq_length": job["max_seq_length"], "selection": selections[task],
                           "patterns": result["tasks"][PET_TASK[task]]}
                written.append(write_golden(STUDY, f"inputs_{model}_{task}", payload))
    return written


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


def max_seq_length(model: str) -> int:
    """PET's 256 (the tiny models have 256 positions, so MultiRC/ReCoRD's 512 is cut to 256 on both sides)."""
    return 256


# the suite side ----------------------------------------------------------------------------------------------------
@cache
def _backbone(model: str):
    from bench.backbones import load_backbone, load_model_config

    return load_backbone(load_model_config(model), device="cpu", dtype="fp32")


@cache
def _composed(model: str, task: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from bench.study import compose_job, hydra_context

    with hydra_context():
        cfg = compose_job(f"fewglue_pet_{task.lower()}", model, ["template.rank=0"])
    return OmegaConf.to_container(cfg, resolve=True)


@cache
def suite_task(model: str, task: str, pattern: int):
    """The suite's ClassificationTask of ``experiment=fewglue_pet_<task>`` for one pattern on ``model``."""
    import copy

    from bench.methods.pet import PatternTuning
    from bench.superglue.task import ClassificationTask

    cfg = copy.deepcopy(_composed(model, task))
    cfg["template"]["rank"] = pattern
    return ClassificationTask(cfg, _backbone(model), PatternTuning())


def suite_records(model: str, task: str, pattern: int, split: str,
                  rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[int]] | None]:
    """The suite's inputs for ``rows`` in the golden files' form, and the label words' ids (one row per label)."""
    from bench.superglue import data as sg

    runner = suite_task(model, task, pattern)
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
            record.update(input_ids=list(r.input_ids), attention_len=len(r.input_ids),
                          token_type_ids=list(r.token_type_ids) if runner.passes_segment_ids and r.token_type_ids
                          and any(r.token_type_ids) else None,
                          mask_positions=list(r.target_positions))
        else:
            first = item.entries[0]
            mask = runner.tok.mask_token_id
            opts = [{"input_ids": list(e.input_ids),
                     "targets": [[p, int(t)] for p, t in zip(e.target_positions, e.token_ids, strict=True)]}
                    for e in item.entries]
            ids = list(first.input_ids)
            record.update(input_ids=ids, attention_len=len(ids), token_type_ids=None,
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


FIELDS = ("input_ids", "token_type_ids", "attention_len", "mask_positions", "label", "options")


def normalise(task: str, record: dict[str, Any], train: bool) -> dict[str, Any]:
    """What both sides must agree on, in one form (PET's labels: a label index; choice tasks: per option)."""
    out = {k: record.get(k) for k in FIELDS}
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
def golden(model: str, task: str) -> dict[str, Any]:
    return load_golden(STUDY, f"inputs_{model}_{task}")


def compare(model: str, task: str, pattern: int, split: str) -> dict[str, Any]:
    """Suite vs reference for one model x task x pattern x split: counts of identical examples per field."""
    gold = golden(model, task)
    ref = gold["patterns"][str(pattern)]
    theirs_split = ref["splits"][split]
    if "error" in theirs_split:
        return {"n": 0, "error": theirs_split["error"]}
    rows = _rows(gold["selection"][split], data_dir())
    ours, words = suite_records(model, task, pattern, split, rows)
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
    result["label_words_identical"] = words is None or ref.get("label_token_ids") is None or \
        [[t for t in row if t >= 0] for row in ref["label_token_ids"]] == [[t for t in row if t >= 0] for row in words]
    return result


def _short(value: Any, other: Any = None, limit: int = 120) -> str:
    """A value for a message; for two id lists, the stretch around their first difference."""
    if isinstance(value, list) and isinstance(other, list) and value and all(isinstance(v, int) for v in value):
        i = next((k for k, (a, b) in enumerate(zip(value, other, strict=False)) if a != b), min(len(value), len(other)))
        return f"@{i}: {value[max(0, i - 3): i + 4]}"
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def table(models: Sequence[str] = tuple(MODELS), tasks: Sequence[str] = tuple(PET_TASK)) -> str:
    """The docs/parity.md table: per model x task x pattern, identical inputs n/n per split."""
    lines = ["| backbone | task | pattern | train identical | val identical | label words | first difference |",
             "|---|---|---|---|---|---|---|"]
    for model in models:
        for task in tasks:
            for pattern in patterns(task):
                cells, first, words = [], "", True
                for split in ("train", "val"):
                    res = compare(model, task, pattern, split)
                    if "error" in res:
                        cells.append("PET error")
                        first = first or res["error"]
                        continue
                    cells.append(f"{res['identical']}/{res['n']}")
                    first = first or (res["first_difference"] or "")
                    words = words and res["label_words_identical"]
                lines.append(f"| {model} | {task} | {pattern} | {cells[0]} | {cells[1]} | {'=' if words else 'differ'} "
                             f"| {first.replace('|', '/')[:140]} |")
    return "\n".join(lines)
