"""LM-BFF's side of the parity study; runs INSIDE LM-BFF's environment (Python 3.8, transformers 3.4).

``python lmbff_ref.py request.json answer.json`` with the LM-BFF checkout on ``PYTHONPATH`` (and as
the working directory). It imports only LM-BFF's own code (``src.dataset``, ``src.models``) and its
libraries, never ``bench``. The request (written by ``bench/parity/lmbff.py``) holds the texts, the
templates in LM-BFF's notation, label mappings, fixed demonstration ids, fixed embeddings and the
model folder; the answer holds what LM-BFF's code made of them: token ids, mask positions,
label-word ids, filtered candidate lists, loss and label-word logits.

What is run, per job kind:
- ``prompt`` / ``finetune``: ``FewShotDataset`` (its own processors read the TSV files written here)
  and its features (``tokenize_multipart_input``).
- ``demo`` / ``icl``: the template expansion block of ``run.py`` (read from the checkout and executed
  as it stands, since it is inline in ``main``), then ``FewShotDataset.convert_fn`` with the given
  demonstrations.
- ``filter``: ``FewShotDataset`` with ``demo_filter`` on the given embeddings: its candidate lists.
- ``model``: ``RobertaForPromptFinetuning`` loaded with ``from_pretrained`` (as ``run.py`` does),
  its loss and label-word logits on a fixed batch, in fp32 eval mode; then one plain SGD step on
  that batch and the loss and logits after it (which weights the gradient reaches).
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import types

import numpy as np
import torch
from src.dataset import FewShotDataset  # noqa: E402  (the checkout is on PYTHONPATH)

SNLI_HEADER = ["index", "captionID", "pairID", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]


def write_tsv(path, task, rows):
    """Rows in the GLUE layout LM-BFF's processors read (SST-2: sentence, label; SNLI: 11 columns)."""
    with open(path, "w", encoding="utf-8") as handle:
        if task == "sst-2":
            handle.write("sentence\tlabel\n")
            for row in rows:
                handle.write(f"{row['text_a']}\t{row['label']}\n")
        else:
            handle.write("\t".join(SNLI_HEADER) + "\n")
            for i, row in enumerate(rows):
                cols = [str(i), "c", "p", "", "", "", "", row["text_a"], row["text_b"], row["label"], row["label"]]
                handle.write("\t".join(cols) + "\n")


def data_args(task, template, mapping, max_length, **extra):
    values = dict(task_name=task, data_dir=None, max_seq_length=max_length, overwrite_cache=True, prompt=True,
                  template=template, mapping=mapping, template_list=None, num_sample=1, demo_filter=False,
                  demo_filter_rate=0.5, demo_filter_model=None, first_sent_limit=None, other_sent_limit=None,
                  double_demo=False, gpt3_in_context_head=False, gpt3_in_context_tail=False,
                  gpt3_in_context_num=32, truncate_head=False, auto_demo=True, debug_mode=False)
    values.update(extra)
    return types.SimpleNamespace(**values)


def expand_template(ref, args, num_labels):
    """Run ``run.py``'s inline template expansion (demonstrations / GPT-3 context) on ``args``."""
    with open(os.path.join(ref, "run.py"), encoding="utf-8") as handle:
        source = handle.read()
    start = source.index("    # Automatically generate template for using demonstrations")
    end = source.index("    # Create config", start)
    block = "\n".join(line[4:] for line in source[start:end].split("\n"))
    scope = {"data_args": args, "model_args": types.SimpleNamespace(few_shot_type="prompt-demo"),
             "num_labels": num_labels, "logger": logging.getLogger("lmbff.run")}
    exec(compile(block, "run.py (template expansion)", "exec"), scope)  # noqa: S102
    return args.template


def features_out(feature):
    n = int(sum(feature.attention_mask))
    out = {"input_ids": list(feature.input_ids[:n]), "length": len(feature.input_ids)}
    if feature.mask_pos is not None:
        out["mask_pos"] = list(feature.mask_pos)
    return out


def dataset(args, tokenizer, mode, use_demo=False):
    np.random.seed(0)  # only draws of select_context depend on it; the answers here do not use them
    return FewShotDataset(args, tokenizer=tokenizer, mode=mode, use_demo=use_demo)


def prompt_job(job, tokenizer, workdir):
    """Every query of every split through FewShotDataset (no demonstrations)."""
    out = {"inputs": {}, "label_word_ids": None}
    for group in job["groups"]:  # one data split (seed) each: its train, dev and test files
        folder = tempfile.mkdtemp(dir=workdir)
        for split, rows in group["files"].items():
            write_tsv(os.path.join(folder, split + ".tsv"), job["task"], rows)
        args = data_args(job["task"], job.get("template"), job.get("mapping"), job["max_length"], data_dir=folder,
                         prompt=job["kind"] == "prompt")
        for split in group["queries"]:
            data = dataset(args, tokenizer, split)
            keys = [row["key"] for row in group["files"][split]]
            for i, key in enumerate(keys):
                out["inputs"][split + "/" + key] = features_out(data[i])
            if job["kind"] == "prompt":
                out["label_word_ids"] = [int(x) for x in data.label_word_list]
    return out


def demo_job(job, tokenizer, workdir, ref):
    """Given demonstrations (fixed ids) through run.py's template expansion and convert_fn."""
    folder = tempfile.mkdtemp(dir=workdir)
    for split, rows in job["files"].items():
        write_tsv(os.path.join(folder, split + ".tsv"), job["task"], rows)
    icl = job["kind"] == "icl"
    args = data_args(job["task"], job["template"], job["mapping"], job["max_length"], data_dir=folder,
                     gpt3_in_context_head=icl, truncate_head=icl, gpt3_in_context_num=job.get("context", 32))
    data = dataset(args, tokenizer, "train")
    template = expand_template(ref, args, len(data.label_list))
    support = data.support_examples
    out = {"template": template, "inputs": {}}
    for split, queries in job["queries"].items():
        examples = data.processor.get_train_examples(folder) if split == "train" else (
            data.processor.get_dev_examples(folder) if split == "dev" else data.processor.get_test_examples(folder))
        by_key = {row["key"]: ex for row, ex in zip(job["files"][split], examples)}  # noqa: B905 (Python 3.8)
        for query in queries:
            # demos are in input order; the GPT-3 template puts support i at slot n-1-i (run.py), so reverse
            order = list(reversed(query["demos"])) if icl else query["demos"]
            supports = [support[i] for i in order]
            feature = data.convert_fn(example=by_key[query["key"]], supports=supports, use_demo=True,
                                      label_list=data.label_list, prompt=True, template=template,
                                      label_word_list=data.label_word_list)
            out["inputs"][split + "/" + query["id"]] = features_out(feature)
    return out


def filter_job(job, tokenizer, workdir):
    """FewShotDataset's demonstration filter on fixed embeddings: each query's candidate list."""
    folder = tempfile.mkdtemp(dir=workdir)
    for split, rows in job["files"].items():
        write_tsv(os.path.join(folder, split + ".tsv"), job["task"], rows)
        emb = np.asarray(job["embeddings"][split], dtype=np.float32)
        np.save(os.path.join(folder, f"{split}_fixed.npy"), emb)
    args = data_args(job["task"], job["template"], job["mapping"], job["max_length"], data_dir=folder,
                     demo_filter=True, demo_filter_model="fixed", demo_filter_rate=job["rate"])
    out = {}
    for split in job["queries"]:
        data = dataset(args, tokenizer, split, use_demo=True)
        keys = [row["key"] for row in job["files"][split]]
        for query_idx, candidates, _sample in data.example_idx:
            out[split + "/" + keys[query_idx]] = [int(c) for c in candidates]
    return {"candidates": out}


def model_job(job, tokenizer):
    """RobertaForPromptFinetuning as run.py builds it: loss and label-word logits on a fixed batch."""
    from src.models import RobertaForPromptFinetuning
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(job["model_dir"], num_labels=len(job["label_word_ids"]))
    model = RobertaForPromptFinetuning.from_pretrained(job["model_dir"], config=config)
    model.label_word_list = torch.tensor(job["label_word_ids"], dtype=torch.long)
    model.eval()
    length = max(len(ids) for ids in job["input_ids"])
    ids = [x + [tokenizer.pad_token_id] * (length - len(x)) for x in job["input_ids"]]
    mask = [[1] * len(x) + [0] * (length - len(x)) for x in job["input_ids"]]
    with torch.no_grad():
        loss, logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                             mask_pos=torch.tensor(job["mask_pos"]), labels=torch.tensor(job["labels"]))
    tied = model.lm_head.decoder.weight.data_ptr() == model.roberta.embeddings.word_embeddings.weight.data_ptr()
    out = {"loss": float(loss), "logits": logits.double().tolist(), "lm_head_tied_to_embeddings": bool(tied)}
    if job.get("sgd_lr"):  # one plain SGD step on the batch: which weights the gradient reaches (untied head)
        model.zero_grad()
        loss, _ = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                        mask_pos=torch.tensor(job["mask_pos"]), labels=torch.tensor(job["labels"]))
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                if param.grad is not None:
                    param -= job["sgd_lr"] * param.grad
            loss, logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                                 mask_pos=torch.tensor(job["mask_pos"]), labels=torch.tensor(job["labels"]))
        out["after_step"] = {"loss": float(loss), "logits": logits.double().tolist()}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("request")
    parser.add_argument("answer")
    cli = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ref = os.getcwd()
    with open(cli.request, encoding="utf-8") as handle:
        request = json.load(handle)
    torch.set_num_threads(1)
    from transformers import AutoTokenizer  # LM-BFF's run.py: AutoTokenizer (slow by default in 3.4)

    tokenizer = AutoTokenizer.from_pretrained(request["tokenizer_dir"])
    import transformers

    answer = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                           "python": sys.version.split()[0], "tokenizer_class": type(tokenizer).__name__},
              "jobs": {}}
    workdir = tempfile.mkdtemp(prefix="lmbff_ref_")
    for name, job in request["jobs"].items():
        print(f"[lmbff_ref] {name}", file=sys.stderr)
        if job["kind"] in ("prompt", "finetune"):
            answer["jobs"][name] = prompt_job(job, tokenizer, workdir)
        elif job["kind"] in ("demo", "icl"):
            answer["jobs"][name] = demo_job(job, tokenizer, workdir, ref)
        elif job["kind"] == "filter":
            answer["jobs"][name] = filter_job(job, tokenizer, workdir)
        elif job["kind"] == "model":
            answer["jobs"][name] = model_job(job, tokenizer)
        else:
            raise ValueError(f"unknown job kind {job['kind']!r}")
    with open(cli.answer, "w", encoding="utf-8") as handle:
        json.dump(answer, handle)


if __name__ == "__main__":
    main()
