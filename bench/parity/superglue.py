"""SuperGLUE parity with THUDM/P-tuning-v2 (@b1520c9): the suite's classifier-head inputs beside the reference's.

``python -m bench.parity superglue --ref /path/to/P-tuning-v2`` runs the reference's own
``SuperGlueDataset`` (``bench/parity/superglue_ref.py``, in its pinned environment) on the suite's
prepared rows with the tiny BERT and RoBERTa tokenizers and writes
``tests/golden/parity/superglue/inputs_<task>_<backbone>.json``: per picked example (the first
``N_FIRST`` rows of train and val and the ``N_LONGEST`` longest), the token ids, token types and
label the reference passes, for each ``--template_id`` its scripts use. :func:`suite_inputs` is
the suite's side (a preset's ``ClassificationTask`` items), :func:`compare` the comparison the CI
test and docs/parity.md report.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.io_utils import read_jsonl
from bench.parity.golden import load_golden, write_golden
from bench.parity.refenv import RefSpec, check_checkout, ensure_venv, run_ref_script
from bench.paths import data_dir, models_dir

STUDY = "superglue"
SPEC = RefSpec(
    name="ptv2-b1520c9",
    repo="THUDM/P-tuning-v2",
    commit="b1520c9",
    python="3.8",
    requirements=(
        "numpy==1.19.5",  # requirements.txt pins 1.19.2; 1.19.5 is its last bug-fix release with a Python 3.8 wheel
        "torch==1.12.1",  # any torch 1.x runs transformers 4.11.3; the newest 1.x wheel without separate CUDA packages
        "transformers==4.11.3",  # requirements.txt
        "tokenizers==0.10.3",  # what transformers 4.11.3 accepts (<0.11)
        "datasets==1.15.1",  # requirements.txt
        "pyarrow==6.0.1",  # the pyarrow of datasets 1.15.1's time
        "huggingface-hub==0.1.2",
        "fsspec==2021.11.0",
        "pandas==1.3.5",
        "tqdm==4.62.3",  # requirements.txt
        "scikit-learn==1.0.1",
    ),
    patches=(
        "load_dataset('super_glue', task) reads the hub: replaced by a DatasetDict of the suite's prepared rows laid "
        "out as datasets 1.15.1's super_glue script lays them out (features, label names, MultiRC flattening)",
        "load_metric('super_glue', task) reads the hub: replaced by None (metrics are not compared)",
        "the tiny RoBERTa tokenizer.json (tokenizers 0.2x format) is down-converted for tokenizers 0.10.3: merges as "
        "'a b' strings, the byte_fallback and ignore_merges fields (both false) dropped; same vocabulary and merges",
        "the tiny backbone is handed over as config.json + pytorch_model.bin (transformers 4.11 reads no safetensors); "
        "the fixed-weight cases load their prefix encoder, pooler and classifier weights after from_pretrained",
    ),
)
TASKS = ("boolq", "cb", "copa", "multirc", "rte", "wic", "wsc")  # ReCoRD: no prepared train/val here
FOLDER = {"boolq": "BoolQ", "cb": "CB", "copa": "COPA", "multirc": "MultiRC", "rte": "RTE", "wic": "WiC", "wsc": "WSC"}
BACKBONES = {"tiny-bert": "bert", "tiny-roberta": "roberta"}
TEMPLATE_IDS = {"wic": [0, 1], "wsc": [0]}  # --template_id values the reference's scripts and defaults use
MAX_LENGTH = 128  # --max_seq_length in every P-tuning-v2 script and its default
N_FIRST, N_LONGEST = 50, 5
PTV2_TASKS = ("boolq", "copa", "rte", "wic", "wsc")  # tasks with a released P-tuning-v2 script


def row_keys(task: str, row: Mapping[str, Any], split: str) -> list[str]:
    """The uids the suite gives a row's examples (``bench.superglue.data``): one per MultiRC answer."""
    if task == "multirc":
        return [f"{split}-{row['idx']}-q{q['idx']}-a{a['idx']}" for q in row["passage"]["questions"]
                for a in q["answers"]]
    return [f"{split}-{row['idx']}"]


def _length(row: Mapping[str, Any]) -> int:
    return len(json.dumps(row))


def picks(task: str, root: Path | None = None) -> dict[str, list[str]]:
    """Per split, the compared examples: the first N_FIRST and the N_LONGEST longest (by row text)."""
    root = root or data_dir()
    out: dict[str, list[str]] = {}
    for split in ("train", "val"):
        path = root / "superglue" / FOLDER[task] / f"{split}.jsonl"
        if not path.is_file():
            continue
        rows = read_jsonl(path)
        keys = [k for row in rows for k in row_keys(task, row, split)]
        longest = sorted(rows, key=_length, reverse=True)[:N_LONGEST]
        chosen = keys[:N_FIRST] + [k for row in longest for k in row_keys(task, row, split)[:1]]
        out[split] = list(dict.fromkeys(chosen))
    return out


def tokenizer_dir(model: str) -> Path:
    """The built tiny model's snapshot folder (tokenizer.json, config.json)."""
    from bench.backbones import load_model_config
    from bench.models.tiny import ensure_built

    cfg = load_model_config(model)
    revision = ensure_built(cfg, models_dir())
    return models_dir() / "hub" / f"models--{cfg['hub_id'].replace('/', '--')}" / "snapshots" / revision


def _for_tokenizers_010(source: Path, target: Path) -> Path:
    """Patch 3: a tokenizers-0.2x BPE tokenizer.json in tokenizers 0.10's format (same vocabulary, merges)."""
    import shutil

    data = json.loads((source / "tokenizer.json").read_text())
    model = data["model"]
    if model.get("type") == "BPE":
        model["merges"] = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        for key in ("byte_fallback", "ignore_merges"):
            if model.pop(key, False):
                raise ValueError(f"{source}: {key} is set; tokenizers 0.10 cannot express it")
    target.mkdir(parents=True, exist_ok=True)
    (target / "tokenizer.json").write_text(json.dumps(data))
    for name in ("tokenizer_config.json", "config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    return target


def regenerate(ref: Path, args: Sequence[str]) -> list[Path]:
    """Run the reference on the picked examples and write one golden file per task and backbone."""
    check_checkout(ref, SPEC)
    python = ensure_venv(SPEC)
    script = Path(__file__).with_name("superglue_ref.py")
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        toks = {name: str(_for_tokenizers_010(tokenizer_dir(name), tmp_dir / name)) for name in BACKBONES}
        spec = {"data": str(data_dir() / "superglue"), "tokenizers": toks, "max_length": MAX_LENGTH,
                "tasks": {task: picks(task) for task in TASKS}, "template_ids": TEMPLATE_IDS,
                "cases": model_case_specs(tmp_dir) + head_case_specs(tmp_dir)}
        (tmp_dir / "spec.json").write_text(json.dumps(spec))
        run_ref_script(python, script, ["--spec", str(tmp_dir / "spec.json"), "--out", str(tmp_dir / "out.json")], ref)
        out = json.loads((tmp_dir / "out.json").read_text())
    for task in TASKS:
        for name in BACKBONES:
            payload: dict[str, Any] = {"reference": f"{SPEC.repo}@{SPEC.commit}", "versions": out["versions"],
                                       "max_length": MAX_LENGTH}
            for template_id in TEMPLATE_IDS.get(task, [0]):
                payload[f"template{template_id}"] = {key: _trim(entry) for key, entry in
                                                     out["inputs"][f"{task}/{name}/template{template_id}"].items()}
            written.append(write_golden(STUDY, f"inputs_{task}_{name}", payload))
    keys = {case["name"]: case["keys"] for case in spec["cases"]}
    heads = {case["name"] for case in spec["cases"] if case.get("mode", "prefix") != "prefix"}
    for golden, names in (("models", set(keys) - heads), ("heads", heads)):
        cases = {name: {**result, "keys": keys[name]} for name, result in out["models"].items() if name in names}
        written.append(write_golden(STUDY, golden, {"reference": f"{SPEC.repo}@{SPEC.commit}",
                                                    "versions": out["versions"], "cases": cases}))
    return written


def case_keys(task: str, n: int) -> list[str]:
    """A fixed-weight case's examples: the first n-1 val examples and the longest one."""
    val = picks(task)["val"]
    return [*val[: n - 1], val[-1]]


def model_case_specs(tmp_dir: Path) -> list[dict[str, Any]]:
    """The reference's side of every fixed-weight case (bench/parity/superglue_models.py)."""
    from bench.backbones import load_backbone, load_model_config
    from bench.parity import superglue_models as M

    specs, backbones = [], {}
    for case in M.CASES:
        if case.model not in backbones:
            backbones[case.model] = load_backbone(load_model_config(case.model), device="cpu", dtype="fp32")
            M.write_checkpoint(backbones[case.model], tmp_dir / f"ckpt-{case.model}", tokenizer_dir(case.model))
        backbone = backbones[case.model]
        task_obj = suite_task(f"sgv2_ptuning_v2_{case.task}_{case.arch}", case.model, backbone)
        method = M.suite_method(case, backbone, task_obj.n_out)
        specs.append({"name": case.name, "model_dir": str(tmp_dir / f"ckpt-{case.model}"), "psl": case.psl,
                      "projection": case.projection, "mid": case.mid, "num_labels": task_obj.n_out,
                      "multiple_choice": case.multiple_choice, "weights": M.reference_weights(case, method),
                      "inputs": f"{case.task}/{case.model}/template{case.template_id}",
                      "keys": case_keys(case.task, case.n_examples)})
    return specs


def build_head_case(case, backbone, fixed: bool = True):
    """(task, method) for a ``superglue_heads.HeadCase``: its preset and overrides on a copy of ``backbone``."""
    import copy

    from bench.parity import superglue_heads as H

    backbone = copy.deepcopy(backbone)
    task_obj = suite_task(case.preset, case.model, backbone, case.overrides)
    method = task_obj.method
    method.setup(backbone)
    method.set_num_labels(task_obj.n_out)
    return task_obj, H.suite_method(case, method, fixed)


def head_case_specs(tmp_dir: Path) -> list[dict[str, Any]]:
    """The reference's side of the fine-tuning and Prompt Tuning cases (bench/parity/superglue_heads.py)."""
    from bench.backbones import load_backbone, load_model_config
    from bench.parity import superglue_heads as H

    specs, backbones = [], {}
    for case in H.CASES:
        if case.model not in backbones:
            backbones[case.model] = load_backbone(load_model_config(case.model), device="cpu", dtype="fp32")
        ckpt = tmp_dir / f"ckpt-{case.model}"
        if not ckpt.is_dir():
            from bench.parity import superglue_models as M

            M.write_checkpoint(backbones[case.model], ckpt, tokenizer_dir(case.model))
        task_obj, method = build_head_case(case, backbones[case.model])
        specs.append({"name": case.name, "mode": case.family, "model_dir": str(ckpt), "psl": case.psl,
                      "projection": False, "mid": 16, "num_labels": task_obj.n_out,
                      "multiple_choice": case.multiple_choice, "weights": H.reference_weights(case, method),
                      "inputs": f"{case.task}/{case.model}/template0", "keys": case_keys(case.task, case.n_examples)})
    return specs


def _trim(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The reference pads to max_length; keep the unpadded part (the mask is 1 on it and 0 after)."""
    def cut(values, mask):
        if values and isinstance(values[0], list):
            return [cut(v, m) for v, m in zip(values, mask, strict=True)]
        n = sum(mask)
        if any(mask[n:]) or not all(mask[:n]):
            raise ValueError("the reference's attention mask is not ones then zeros")
        return list(values[:n])

    out = {"input_ids": cut(entry["input_ids"], entry["attention_mask"]), "label": entry["label"],
           "padded_to": len(entry["attention_mask"][0] if isinstance(entry["attention_mask"][0], list)
                            else entry["attention_mask"])}
    if "token_type_ids" in entry:
        out["token_type_ids"] = cut(entry["token_type_ids"], entry["attention_mask"])
    return out


# the suite's side ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    """A row family of P-Tuning v2's table: the suite preset that runs it, the reference's template."""

    name: str
    preset: str  # with {task} and {arch}
    tasks: tuple[str, ...]

    def preset_for(self, task: str, arch: str) -> str:
        return self.preset.format(task=task, arch=arch)

    def template_id(self, task: str, arch: str) -> int:
        """The reference's --template_id: run_wic_bert.sh passes 1; every other script and the default 0."""
        return 1 if (self.name == "ptuning_v2" and task == "wic" and arch == "bert") else 0


FAMILIES = (
    Family("ptuning_v2", "sgv2_ptuning_v2_{task}_{arch}", PTV2_TASKS),
    Family("finetune", "sgv2_finetune_{task}", TASKS),
    Family("prompt_classifier", "sgv2_prompt_tuning_{task}", TASKS),  # --prompt reads the same SuperGlueDataset
)


@dataclass(frozen=True)
class InputComparison:
    """Identical examples out of n, per field, and the first difference."""

    n: int
    identical: dict[str, int]
    first_difference: str | None

    @property
    def ok(self) -> bool:
        return self.n > 0 and all(v == self.n for v in self.identical.values())


def suite_task(preset: str, model: str, backbone, overrides: Sequence[str] = ()):
    """The preset's ``ClassificationTask`` on ``backbone`` (the method object is the preset's own, with ``overrides``)."""
    from hydra.utils import instantiate

    from bench.study import compose_job, hydra_context
    from bench.superglue.task import ClassificationTask

    with hydra_context():
        cfg = compose_job(preset, model, list(overrides))
    from bench.identity import resolved_config

    resolved = resolved_config(cfg)
    method = instantiate(cfg.method.component)
    return ClassificationTask(resolved, backbone, method)


def suite_inputs(task_obj, task: str, keys: Sequence[str], root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per key, the ids, token types and label the suite's task builds for that example (train items for train)."""
    from bench.superglue import data as sg

    root = root or data_dir()
    wanted, out = set(keys), {}
    for split in ("train", "val"):
        path = root / "superglue" / FOLDER[task] / f"{split}.jsonl"
        if not path.is_file() or not any(k.startswith(f"{split}-") for k in wanted):
            continue
        for row in read_jsonl(path):
            for ex in sg.examples_from_row(sg.canonical_task(task), row, f"{split}-{row['idx']}"):
                if ex.uid in wanted:
                    item = task_obj._item(ex, train=split == "train")
                    one = len(item.sequences) == 1 and task != "copa"
                    entry = {"input_ids": item.sequences[0] if one else item.sequences, "label": ex.label}
                    if item.types:
                        entry["token_type_ids"] = item.types[0] if one else item.types
                    out[ex.uid] = entry
    return out


def compare(ours: Mapping[str, Mapping[str, Any]], theirs: Mapping[str, Mapping[str, Any]]) -> InputComparison:
    """Field by field over the reference's keys (a key the suite lacks counts as different)."""
    fields = ("input_ids", "token_type_ids", "label")
    identical = dict.fromkeys(fields, 0)
    first = None
    for key, ref in theirs.items():
        mine = ours.get(key, {})
        for name in fields:
            if mine.get(name) == ref.get(name):
                identical[name] += 1
            elif first is None:
                first = f"{key} {name}: suite {mine.get(name)!r} vs reference {ref.get(name)!r}"
    return InputComparison(len(theirs), identical, first)


def golden_inputs(task: str, model: str, template_id: int) -> dict[str, dict[str, Any]]:
    return load_golden(STUDY, f"inputs_{task}_{model}")[f"template{template_id}"]
