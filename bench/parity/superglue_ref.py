"""Runs inside THUDM/P-tuning-v2's own environment (Python 3.8, transformers 4.11.3, datasets 1.15.1).

Never imports ``bench``. Feeds the suite's prepared SuperGLUE rows (data/superglue/<Task>/*.jsonl,
the official SuperGLUE files) to the reference's ``tasks.superglue.dataset.SuperGlueDataset`` and
writes what it produced (token ids, token types, attention masks, labels) as JSON; with
``--models`` it also runs the reference's prefix / classifier models on fixed weights and a fixed
batch and writes the prefix past key values, logits and loss. Patches (listed in docs/parity.md):

1. ``load_dataset("super_glue", name)`` reads the hub; here it returns a ``DatasetDict`` built from
   the local rows exactly as the ``super_glue`` loader script of datasets 1.15.1 lays them out
   (same features, label names, MultiRC flattening, WSC's ``target`` merged into the row).
2. ``load_metric("super_glue", name)`` reads the hub; it is replaced by ``None`` (metrics are not
   compared: inputs and losses are).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import datasets
import tasks.superglue.dataset as ref_dataset
import torch

LABEL_NAMES = {
    "boolq": ["False", "True"], "cb": ["entailment", "contradiction", "neutral"], "copa": ["choice1", "choice2"],
    "multirc": ["False", "True"], "rte": ["entailment", "not_entailment"], "wic": ["False", "True"],
    "wsc": ["False", "True"],
}
FEATURES = {
    "boolq": ["question", "passage"], "cb": ["premise", "hypothesis"], "rte": ["premise", "hypothesis"],
    "copa": ["premise", "choice1", "choice2", "question"],
    "wic": ["word", "sentence1", "sentence2", "start1", "start2", "end1", "end2"],
    "wsc": ["text", "span1_index", "span2_index", "span1_text", "span2_text"],
}
FOLDER = {"boolq": "BoolQ", "cb": "CB", "copa": "COPA", "multirc": "MultiRC", "rte": "RTE", "wic": "WiC", "wsc": "WSC"}


def _cast_label(label):
    """The super_glue loader's label cast (bool -> "True"/"False", 0/1 -> "0"/"1")."""
    if isinstance(label, str):
        return label
    if isinstance(label, bool):
        return "True" if label else "False"
    return str(label)


def hf_rows(task: str, path: Path, split: str) -> list[dict]:
    """Rows as datasets 1.15.1's super_glue script yields them (patch 1); ``key`` is the suite's uid."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if task == "multirc":
            for q in row["passage"]["questions"]:
                for a in q["answers"]:
                    out.append({"paragraph": row["passage"]["text"], "question": q["question"], "answer": a["text"],
                                "label": _cast_label(bool(a["label"])),
                                "idx": {"paragraph": row["idx"], "question": q["idx"], "answer": a["idx"]},
                                "key": f"{split}-{row['idx']}-q{q['idx']}-a{a['idx']}"})
            continue
        if task == "wsc":
            row.update(row["target"])
        example = {f: row[f] for f in FEATURES[task]}
        example["idx"] = row["idx"]
        if task == "copa":
            example["label"] = "choice2" if row["label"] else "choice1"
        else:
            example["label"] = _cast_label(row["label"])
        example["key"] = f"{split}-{row['idx']}"
        out.append(example)
    return out


def features_of(task: str) -> datasets.Features:
    value = {"start1": "int32", "start2": "int32", "end1": "int32", "end2": "int32", "span1_index": "int32",
             "span2_index": "int32"}
    feats = {f: datasets.Value(value.get(f, "string")) for f in FEATURES.get(task, ["paragraph", "question", "answer"])}
    if task == "multirc":
        feats["idx"] = {"paragraph": datasets.Value("int32"), "question": datasets.Value("int32"),
                        "answer": datasets.Value("int32")}
    else:
        feats["idx"] = datasets.Value("int32")
    feats["label"] = datasets.ClassLabel(names=LABEL_NAMES[task])
    feats["key"] = datasets.Value("string")
    return datasets.Features(feats)


def local_super_glue(data: Path, task: str, picks: dict[str, list[str]]) -> datasets.DatasetDict:
    """The local rows as the loader's DatasetDict, keeping the picked keys (the reference reads only these)."""
    feats = features_of(task)
    splits = {}
    for split, hf_split in (("train", "train"), ("val", "validation")):
        path = data / FOLDER[task] / f"{split}.jsonl"
        rows = hf_rows(task, path, split) if path.is_file() else []
        wanted = set(picks.get(split, []))
        rows = [r for r in rows if r["key"] in wanted]
        splits[hf_split] = rows
    if not splits["train"]:
        splits["train"] = splits["validation"][:1]  # only read for its label names (do_train is off)
    splits["test"] = splits["validation"][:1]
    return datasets.DatasetDict({name: datasets.Dataset.from_dict(
        {k: [r[k] for r in rows] for k in feats}, features=feats) for name, rows in splits.items()})


def run_dataset(tokenizer, data: Path, task: str, template_id: int, max_len: int,
                picks: dict[str, list[str]]) -> dict[str, dict]:
    raw = local_super_glue(data, task, picks)
    ref_dataset.load_dataset = lambda *a, **k: raw  # patch 1
    ref_dataset.load_metric = lambda *a, **k: None  # patch 2
    data_args = SimpleNamespace(dataset_name=task, template_id=template_id, pad_to_max_length=True,
                                max_seq_length=max_len, overwrite_cache=False, max_train_samples=None,
                                max_eval_samples=None, max_predict_samples=None, test_file=None)
    train_args = SimpleNamespace(do_train=bool(picks.get("train")), do_eval=True, do_predict=False, fp16=False)
    ds = ref_dataset.SuperGlueDataset(tokenizer, data_args, train_args)
    out: dict[str, dict] = {}
    parts = [ds.eval_dataset] + ([ds.train_dataset] if train_args.do_train else [])
    for part in parts:
        for row in part:
            ids = row["input_ids"]
            entry = {"input_ids": ids, "attention_mask": row["attention_mask"], "label": row["label"]}
            if "token_type_ids" in row:
                entry["token_type_ids"] = row["token_type_ids"]
            out[row["key"]] = entry
    return out


def _stats(model, base: str) -> dict:
    """How from_pretrained initialised what the checkpoint lacks (prefix encoder, classifier, pooler)."""
    params = dict(model.named_parameters())
    out = {}
    for name, p in params.items():
        if name.startswith(("prefix_encoder.", "classifier.", base + ".pooler.")):
            out[name] = {"mean": float(p.mean()), "std": float(p.std()) if p.numel() > 1 else 0.0,
                         "absmax": float(p.abs().max()), "n": p.numel()}
    return out


def fixed_models(spec: dict, inputs: dict) -> dict:
    """The reference's models on fixed weights and its own batch: logits, loss (prefix models: prefixes, mask)."""
    from model.utils import TaskType, get_model
    from transformers import AutoConfig

    results = {}
    for case in spec["cases"]:
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(case["model_dir"], num_labels=case["num_labels"])
        config.attention_probs_dropout_prob = 0.0
        mode = case.get("mode", "prefix")  # prefix (--prefix) | prompt (--prompt) | finetune (neither)
        args = SimpleNamespace(model_name_or_path=case["model_dir"], prefix=mode == "prefix", prompt=mode == "prompt",
                               pre_seq_len=case["psl"], prefix_projection=case["projection"],
                               prefix_hidden_size=case["mid"], hidden_dropout_prob=0.0, model_revision="main")
        kind = TaskType.MULTIPLE_CHOICE if case["multiple_choice"] else TaskType.SEQUENCE_CLASSIFICATION
        # get_trainer.py: fix_bert=True for multiple choice only (the prefix / prompt models freeze themselves)
        model = get_model(args, kind, config, fix_bert=case["multiple_choice"] or mode == "prefix")
        model.eval()
        base_name = model.base_model_prefix
        init = _stats(model, base_name)
        state = {k: torch.tensor(v) for k, v in case["weights"].items()}
        unknown = sorted(set(state) - set(dict(model.named_parameters())))
        if unknown:
            raise KeyError(f"weights for parameters the reference model lacks: {unknown}")
        model.load_state_dict(state, strict=False)
        rows = [inputs[case["inputs"]][key] for key in case["keys"]]
        batch = {k: torch.tensor([r[k] for r in rows]) for k in ("input_ids", "attention_mask", "token_type_ids")
                 if k in rows[0]}
        batch["labels"] = torch.tensor([r["label"] for r in rows])
        base = getattr(model, base_name)
        seen = {}
        forward = base.forward

        def capture(*a, _seen=seen, _forward=forward, **k):
            _seen["attention_mask"] = k["attention_mask"]
            return _forward(*a, **k)

        base.forward = capture
        with torch.no_grad():
            out = model(**batch, return_dict=True)
            prompt = model.get_prompt(1) if mode == "prefix" else None
        result = {"logits": out.logits.tolist(), "loss": float(out.loss), "init": init,
                  "trainable": sorted(n for n, p in model.named_parameters()
                                      if p.requires_grad and not n.startswith(base_name + ".")),
                  "backbone_trainable": sum(p.numel() for p in base.parameters() if p.requires_grad)}
        if prompt is not None:
            result["past_key_values"] = [[layer[0][0].tolist(), layer[1][0].tolist()] for layer in prompt]
            result["attention_mask"] = seen["attention_mask"].tolist()
        results[case["name"]] = result
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True, help="JSON: data dir, tokenizers, tasks, picked keys, max length")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    from transformers import AutoTokenizer

    out: dict = {"versions": {"transformers": __import__("transformers").__version__,
                              "datasets": datasets.__version__, "torch": torch.__version__,
                              "python": sys.version.split()[0]}, "inputs": {}}
    for backbone, tok_dir in spec.get("tokenizers", {}).items():
        tokenizer = AutoTokenizer.from_pretrained(tok_dir, use_fast=True)
        for task, picks in spec["tasks"].items():
            for template_id in spec["template_ids"].get(task, [0]):
                name = f"{task}/{backbone}/template{template_id}"
                print(f"[superglue_ref] {name}", file=sys.stderr)
                out["inputs"][name] = run_dataset(tokenizer, Path(spec["data"]), task, template_id,
                                                  spec["max_length"], picks)
    if spec.get("cases"):
        out["models"] = fixed_models(spec, out["inputs"])
    Path(args.out).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
