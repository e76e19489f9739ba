"""LM-BFF's side of the automatic-search parity study; runs INSIDE LM-BFF's environment (Python 3.8,
transformers 3.4, torch 1.6, numpy 1.19).

``python lmbff_auto_ref.py request.json answer.json`` with the LM-BFF checkout on ``PYTHONPATH`` and as
the working directory. It runs LM-BFF's own code, never ``bench``:

- ``templates``: ``tools/generate_template.py``'s ``search_template`` (its data loading, input formats,
  beam search and template notation) on a k-shot ``train.tsv`` written here, with the exported tiny
  T5 (``T5ForConditionalGeneration.from_pretrained``). Two patches, both forced by the setting and no
  change to the search: ``Tensor.cuda`` returns the tensor (no GPU), and the tokenizer is a table of
  the suite tokenizer's encodings sent in the request (transformers 3.4's ``T5Tokenizer`` needs a
  sentencepiece file the tiny T5 does not have; a string the table lacks stops the run, naming it).
  The answer: the written templates, and per beam item its printed score and generated ids.
- ``labels``: ``src/label_search.py``'s ``find_labels`` on given mask logits and labels (no model:
  ``find_labels`` reads the model only for seed labels), with the vocabulary sent in the request.
"""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lmbff_ref import write_tsv  # noqa: E402  (our own TSV writer beside this file; imports LM-BFF's dataset)


class T5TokenizerTable:
    """The tokenizer calls ``generate_template.py`` makes, answered from the request's table."""

    def __init__(self, table):
        self.texts = table["texts"]
        self.tokens = table["tokens"]
        self.id_to_token = {int(k): v for k, v in table["id_to_token"].items()}
        self.sep_token_id = self.eos_token_id = self.tokens["</s>"]
        self.cls_token_id = self.mask_token_id = None

    def encode(self, text, add_special_tokens=True):
        assert not add_special_tokens, "generate_template.py encodes without special tokens"
        if text not in self.texts:
            raise KeyError(f"the request has no encoding of {text!r}")
        return list(self.texts[text])

    def _convert_token_to_id(self, token):
        if token not in self.tokens:
            raise KeyError(f"the request has no id for token {token!r}")
        return self.tokens[token]

    def _convert_id_to_token(self, index):
        return self.id_to_token[int(index)]

    def decode(self, ids):
        return f"<{len(ids)} ids>"


def load_tool(ref, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ref, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_printed(text):
    """The (score, generated ids) pairs ``generate`` prints for its final beam, in order."""
    out, score = [], None
    for line in text.splitlines():
        if line.startswith("score: "):
            score = float(line[len("score: "):])
        elif line.startswith("generated ids "):
            out.append({"score": score, "ids": json.loads(line[len("generated ids "):])})
    return out


def run_templates(ref, job):
    from transformers import T5ForConditionalGeneration

    gt = load_tool(ref, "generate_template")
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # no GPU here
    model = T5ForConditionalGeneration.from_pretrained(job["model_dir"])
    model.eval()
    tokenizer = T5TokenizerTable(job["table"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "data", job["task"], f"16-{job['seed']}")
        os.makedirs(folder)
        write_tsv(os.path.join(folder, "train.tsv"), job["task"].lower(), job["rows"])
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            gt.search_template(model=model, tokenizer=tokenizer, task_name=job["task"], k=16, seed=job["seed"],
                               beam=job["beam"], output_dir=os.path.join(tmp, "out"),
                               data_dir=os.path.join(tmp, "data"))
        with open(os.path.join(tmp, "out", job["task"], f"16-{job['seed']}.txt"), encoding="utf-8") as handle:
            templates = [line.rstrip("\n") for line in handle]
    return {"templates": templates, "beams": parse_printed(printed.getvalue())}


def run_labels(job):
    from src.label_search import find_labels, select_likely_words

    logits = np.array(job["logits"], dtype=np.float32)
    labels = np.array(job["labels"], dtype=np.int64)
    pairings = find_labels(model=None, train_logits=logits, train_labels=labels, seed_labels=None,
                           k_likely=job["k_likely"], k_neighbors=None, top_n=job["n_pairs"], vocab=job["vocab"],
                           is_regression=False)
    likely = select_likely_words(logits, labels, k_likely=job["k_likely"], vocab=job["vocab"])
    scores = [float(np.mean(np.argmax(logits[:, list(p)], axis=-1) == labels)) for p in pairings]
    return {"likely": [[int(i) for i in c] for c in likely], "pairings": [[int(i) for i in p] for p in pairings], "train_accuracy": scores}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("request")
    parser.add_argument("answer")
    args = parser.parse_args()
    with open(args.request, encoding="utf-8") as handle:
        request = json.load(handle)
    ref = os.getcwd()
    torch.set_num_threads(1)
    jobs = {}
    for name, job in request["jobs"].items():
        jobs[name] = run_templates(ref, job) if job["kind"] == "templates" else run_labels(job)
    import numpy
    import transformers

    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "transformers": transformers.__version__, "numpy": numpy.__version__}
    with open(args.answer, "w", encoding="utf-8") as handle:
        json.dump({"jobs": jobs, "versions": versions}, handle)


if __name__ == "__main__":
    main()
