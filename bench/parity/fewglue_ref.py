"""Run inside timoschick/pet's own environment (Python 3.7, transformers 3.0.2): PET's model inputs as JSON.

Imports only the reference checkout (on ``PYTHONPATH``) and its libraries, never ``bench``.
Usage: ``python fewglue_ref.py JOB.json`` where the job names the tokenizer files, the model type,
``max_seq_length`` and per task the patterns and the JSONL files of each split; the output holds,
per task, pattern and split, what PET's preprocessing and task helpers give each example.
"""

import json
import sys
from types import SimpleNamespace

import torch
from pet.utils import trim_input_ids
from transformers import AlbertTokenizer, BertTokenizer, RobertaTokenizer

# tasks whose evaluation calls the model with trimmed input ids alone (task_helpers' eval_step: model(input_ids))
EVAL_IDS_ONLY = ("copa", "record")


def load_tokenizer(kind, files):
    """As PET loads it (``from_pretrained`` on a folder: the special tokens are registered as unsplittable)."""
    if kind == "albert":  # AlbertTokenizer's defaults: lower-case, no accents, the slow SentencePiece model
        return AlbertTokenizer.from_pretrained(files["folder"])
    if kind == "roberta":
        return RobertaTokenizer.from_pretrained(files["folder"])
    if kind == "bert":
        return BertTokenizer.from_pretrained(files["folder"], do_lower_case=files.get("lowercase", False))
    raise SystemExit(f"unknown model type {kind!r}")


def reference(flavour):
    """PET's preprocessing, processors and task helpers, or PT-Fewshot's (its own copies under data_utils/)."""
    import pet.wrapper  # noqa: F401  first, as PT-Fewshot's cli.py does (its preprocessor <-> wrapper import cycle)
    from pet.preprocessor import MLMPreprocessor

    if flavour == "ptfewshot":
        from data_utils.task_processors import PROCESSORS, TASK_HELPERS
    else:
        from pet.tasks import PROCESSORS, TASK_HELPERS
    return MLMPreprocessor, PROCESSORS, TASK_HELPERS


def passes_types(model_type, task, train, flavour):
    """Whether the wrapper hands token_type_ids to the model (generate_default_inputs: PET bert and xlnet,
    PT-Fewshot bert only)."""
    if model_type not in (("bert",) if flavour == "ptfewshot" else ("bert", "xlnet")):
        return False
    return train or task not in EVAL_IDS_ONLY


def compact(row):
    """[-100, .., id, id, ..] -> [[position, id], ..] for the non-ignored entries."""
    return [[i, int(t)] for i, t in enumerate(row) if t != -100]


def option(tokenizer, ids, targets, train):
    """One choice: training scores it on the shared input; evaluation trims the masks to its length."""
    targets = compact(targets)
    if not train:
        ids = trim_input_ids(torch.tensor([ids]), pad_token_id=tokenizer.pad_token_id,
                             mask_token_id=tokenizer.mask_token_id, num_masks=len(targets)).tolist()[0]
    return {"input_ids": ids, "targets": targets}


def encode(tokenizer, job, task, pattern, split, path, set_type):
    flavour = job.get("flavour", "pet")
    MLMPreprocessor, PROCESSORS, TASK_HELPERS = reference(flavour)  # noqa: N806
    config = SimpleNamespace(task_name=task, wrapper_type="mlm", max_seq_length=job["tasks"][task]["max_seq_length"],
                             model_type=job["model_type"], label_list=PROCESSORS[task]().get_labels())
    wrapper = SimpleNamespace(tokenizer=tokenizer, config=config)
    wrapper.preprocessor = MLMPreprocessor(wrapper, task, pattern)
    helper = TASK_HELPERS[task](wrapper) if task in TASK_HELPERS else None
    examples = PROCESSORS[task]()._create_examples(path, set_type)
    train = set_type == "train"
    if train:  # modeling.train_single_model scores the training set before training: WSC's pad draws come first
        for example in examples:
            wrapper.preprocessor.get_input_features(example, labelled=True)
    out = []
    for example in examples:
        features = wrapper.preprocessor.get_input_features(example, labelled=True)
        if helper is not None:
            helper.add_special_input_features(example, features)
        n = sum(features.attention_mask)
        flags = (getattr(features, "block_flag", None) or [])[:n]
        soft = [i for i, f in enumerate(flags) if f == 1]
        ids = [-1 if i in soft else t for i, t in enumerate(features.input_ids[:n])]  # replaced by the prompt encoder
        types = features.token_type_ids[:n]
        record = {
            "guid": example.guid,
            "input_ids": ids,
            "attention_len": n,
            "padded_len": len(features.input_ids),
            "token_type_ids": types if passes_types(job["model_type"], task, train, flavour) and any(types) else None,
            "mask_positions": [i for i, t in enumerate(ids) if t == tokenizer.mask_token_id],
            "soft_positions": soft,
            "label": features.label,
        }
        meta = features.meta
        if "choice1_token_ids" in meta:
            record["options"] = [option(tokenizer, ids, meta[k], train) for k in ("choice1_token_ids", "choice2_token_ids")]
        if "target_token_ids" in meta:
            record["options"] = [{"input_ids": ids, "targets": compact(meta["target_token_ids"])}]
        if "candidate_token_ids" in meta:
            cands = example.meta["candidates"]
            pairs = zip(cands, meta["candidate_token_ids"])  # noqa: B905 (Python 3.7: no strict=)
            record["options"] = {c: option(tokenizer, ids, t, train) for c, t in pairs}
            record["answers"] = sorted(example.meta["answers"])
        out.append(record)
    verbalizer = getattr(wrapper.preprocessor.pvp, "mlm_logits_to_cls_logits_tensor", None)
    return out, (verbalizer.tolist() if verbalizer is not None else None)


def stage(spec, folder):
    """PET's second stage on fixed numbers: merged logits, soft labels (T), distillation loss, iPET per-label counts."""
    import os

    import torch.nn.functional as F
    from pet.modeling import generate_ipet_train_sets, merge_logits_lists
    from pet.utils import InputExample, LogitsList, distillation_loss, save_logits

    lists = [LogitsList(score=acc, logits=lg) for acc, lg in zip(spec["train_accuracy"], spec["logits"])]  # noqa: B905
    out = {}
    for reduction in ("wmean", "mean"):
        out["merged_" + reduction] = merge_logits_lists(lists, reduction=reduction).logits
    merged = torch.tensor(out["merged_wmean"], dtype=torch.float)
    temperature = spec["temperature"]
    out["soft_labels"] = F.softmax(merged / temperature, dim=1).tolist()
    student = torch.tensor(spec["student_logits"], dtype=torch.float)
    out["distillation_loss"] = distillation_loss(student, merged, temperature).item()
    # iPET: every model's logits in a folder of its own, as train_pet_ensemble leaves them
    logits_dir, out_dir = os.path.join(folder, "logits"), os.path.join(folder, "ipet")
    for i, ll in enumerate(lists):
        sub = os.path.join(logits_dir, "p%d" % i)  # noqa: UP031
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "results.txt"), "w") as fh:
            fh.write(str({"train_set_before_training": ll.score}))
        save_logits(os.path.join(sub, "logits.txt"), ll.logits)  # as train_pet_ensemble writes them
    labels = [str(i) for i in range(len(spec["logits"][0][0]))]
    train = [InputExample(guid="train-%d" % i, text_a="", label=str(lab)) for i, lab in enumerate(spec["train_labels"])]  # noqa: UP031
    unlabeled = [InputExample(guid="unlabeled-%d" % i, text_a="") for i in range(len(spec["logits"][0]))]  # noqa: UP031
    generate_ipet_train_sets(train_data=train, unlabeled_data=unlabeled, labels=labels, logits_dir=logits_dir,
                             output_dir=out_dir, reduction="wmean", num_new_examples=spec["num_new_examples"],
                             logits_percentage=spec["logits_percentage"], n_most_likely=-1, seed=42)
    counts = {}
    for name in sorted(os.listdir(out_dir)):
        examples = InputExample.load_examples(os.path.join(out_dir, name))
        counts[name.split("-")[0]] = [sum(1 for ex in examples if ex.label == lab) for lab in labels]
    out["ipet_per_label"] = counts
    return out


def main():
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    if "stage" in job:
        with open(job["out"], "w") as handle:
            json.dump(stage(job["stage"], job["folder"]), handle)
        return
    if "slow_bert" in job:  # 3.0.2's BertTokenizer on plain texts, cased and uncased (fewglue_slow_bert.py)
        spec = job["slow_bert"]
        out = {}
        for variant, lower in (("cased", False), ("uncased", True)):
            tok = BertTokenizer.from_pretrained(spec["folder"], do_lower_case=lower)
            out[variant] = [tok.encode(text, add_special_tokens=False) for text in spec["texts"]]
        with open(job["out"], "w") as handle:
            json.dump(out, handle)
        return
    tokenizer = load_tokenizer(job["model_type"], job["tokenizer"])
    result = {"model_type": job["model_type"], "tasks": {}}
    for task, spec in sorted(job["tasks"].items()):
        per_task = result["tasks"][task] = {}
        for pattern in spec["patterns"]:
            entry = per_task[str(pattern)] = {"splits": {}}
            for split, (path, set_type) in sorted(spec["splits"].items()):
                try:
                    records, verbalizer = encode(tokenizer, job, task, pattern, split, path, set_type)
                except Exception as err:  # a pattern PET cannot encode here is a fact to record, not a crash
                    entry["splits"][split] = {"error": f"{type(err).__name__}: {err}"}
                    continue
                entry["splits"][split] = {"examples": records}
                entry["label_token_ids"] = verbalizer
            print(f"[fewglue_ref] {task} pattern {pattern} done", file=sys.stderr)
    with open(job["out"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
