"""LM-BFF automatic-search parity (princeton-nlp/LM-BFF @c282f52): ``python -m bench.parity lmbff_auto --ref PATH``.

Runs ``bench/parity/lmbff_auto_ref.py`` in LM-BFF's environment (the ``lmbff-c282f52`` venv of
``bench.parity.lmbff``) and writes ``tests/golden/parity/lmbff_auto/``:

- ``templates``: ``tools/generate_template.py``'s ``search_template`` on a few rows of the SST-2 and
  SNLI k-shot train splits with the tiny T5 (``parity_t5_state``: its weights with the rows of
  ``</s>`` and ``<extra_id_0..2>`` in the shared embedding scaled by 20, so that the random
  model closes spans and both formats' part logic runs): every final beam item's ids and score, and
  the templates it writes.
- ``labels``: ``src/label_search.py`` (``select_likely_words``, ``find_labels``) on fixed random mask
  logits with the tiny RoBERTa's vocabulary.

The suite recomputes its side in ``tests/parity/test_lmbff_auto_parity.py`` (:func:`ours_templates`,
:func:`ours_labels`). Golden files hold row numbers, token ids, the reference's template strings and floats.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.parity.golden import load_golden, write_golden
from bench.parity.lmbff import SPEC
from bench.parity.refenv import check_checkout, ensure_venv, run_ref_script

STUDY = "lmbff_auto"
TEMPLATE_CASES = {"SST-2": {"seed": 13, "rows": [0, 1, 2, 3, 16, 17, 18, 19], "beam": 6},
                  "SNLI": {"seed": 13, "rows": [0, 1, 16, 17, 32, 33], "beam": 4}}
BOOST = 20.0  # scale of the BOOSTED rows of the shared embedding in the parity T5
BOOSTED = ("</s>", "<extra_id_0>", "<extra_id_1>", "<extra_id_2>")
CROSS_BIAS = "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"
LABEL_CASE = {"n": 24, "classes": 2, "k_likely": 12, "n_pairs": 20, "seed": 7}


def t5_snapshot() -> Path:
    from bench.parity.lmbff_suite import snapshot_dir

    return snapshot_dir("tiny-t5")


def parity_t5_state() -> dict[str, torch.Tensor]:
    """The tiny T5's weights for the parity case (tied: the shared matrix is input and output embedding)."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    state = load_file(str(t5_snapshot() / "model.safetensors"))
    tok = AutoTokenizer.from_pretrained(str(t5_snapshot()))
    shared = state["shared.weight"].clone()
    for token in BOOSTED:
        shared[tok.convert_tokens_to_ids(token)] *= BOOST
    state["shared.weight"] = shared
    for key in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        state[key] = shared
    return state


def parity_t5():
    """(model, tokenizer): the tiny T5 with :func:`parity_t5_state`, fp32, eval mode, on the CPU."""
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(str(t5_snapshot()), dtype=torch.float32)
    model.load_state_dict(parity_t5_state(), strict=False)
    model.tie_weights()
    return model.eval(), AutoTokenizer.from_pretrained(str(t5_snapshot()))


def export_t5(folder: Path) -> Path:
    """The parity T5 as transformers 3.4 reads it: config.json (3.4's keys) and pytorch_model.bin."""
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads((t5_snapshot() / "config.json").read_text(encoding="utf-8"))
    keep = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
            "relative_attention_num_buckets", "dropout_rate", "layer_norm_epsilon", "initializer_factor",
            "is_encoder_decoder", "pad_token_id", "eos_token_id", "decoder_start_token_id")
    if config.get("feed_forward_proj", "relu") != "relu" or config.get("relative_attention_max_distance", 128) != 128:
        raise RuntimeError("transformers 3.4's T5 has a ReLU feed-forward and max distance 128 only")
    (folder / "config.json").write_text(json.dumps({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"],
                                                    **{k: config[k] for k in keep}}), encoding="utf-8")
    state = parity_t5_state()
    # transformers 3.4 gives the decoder's first cross-attention a relative-position table that current T5
    # (and Mesh TF's) has not; zeros add nothing to the scores, which is what the current model computes
    state[CROSS_BIAS] = torch.zeros(config["relative_attention_num_buckets"], config["num_heads"])
    torch.save({k: v.clone().contiguous() for k, v in state.items()}, folder / "pytorch_model.bin")
    return folder


def case_examples(task: str) -> list[tuple[list[str], str]]:
    """(texts, label name) of the case's train rows, as LM-BFF's load_dataset reads them."""
    from bench.lmbff import data as kd

    case = TEMPLATE_CASES[task]
    rows = kd.load_split(task, "train", case["seed"])
    names = kd.LABELS[task]
    return [([rows[r].fields[f] for f in kd.FIELDS[task]], names[rows[r].label]) for r in case["rows"]]


def _table(tokenizer, examples: list[tuple[list[str], str]]) -> dict[str, Any]:
    """Every string the reference may encode for these examples (sentence variants, label words, template
    text) and every token it converts, by the suite's tokenizer."""
    from bench.lmbff.auto_templates import FORMATS, MAPPINGS

    texts: set[str] = {" " + w for mapping in MAPPINGS.values() for w in mapping.values()}
    for fields, _label in examples:
        for t in fields:
            for v in (t, t[:1].lower() + t[1:], t[:1].upper() + t[1:]):
                texts |= {v, " " + v, v[:-1], " " + v[:-1]}
    tokens = {"</s>", ".", *(f"<extra_id_{i}>" for i in range(10))}
    for formats in FORMATS.values():
        for fmt in formats:
            for part in fmt.source.split("*"):
                texts.add(part.replace("_", " "))
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return {"texts": {t: tokenizer.encode(t, add_special_tokens=False) for t in sorted(texts)},
            "tokens": {t: tokenizer.convert_tokens_to_ids(t) for t in sorted(tokens)},
            "id_to_token": {str(i): v for i, v in enumerate(vocab)}}


def label_case() -> dict[str, Any]:
    """Fixed random mask logits over the tiny RoBERTa's vocabulary (float32, rounded to 1e-3: no ties)."""
    from bench.parity.lmbff_suite import tokenizer

    tok = tokenizer()
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    rng = np.random.default_rng(LABEL_CASE["seed"])
    labels = np.repeat(np.arange(LABEL_CASE["classes"]), LABEL_CASE["n"] // LABEL_CASE["classes"])
    logits = rng.normal(size=(LABEL_CASE["n"], len(vocab))).astype(np.float32)
    return {"logits": logits.tolist(), "labels": labels.tolist(), "vocab": vocab,
            "k_likely": LABEL_CASE["k_likely"], "n_pairs": LABEL_CASE["n_pairs"]}


def ours_templates(task: str) -> list[dict]:
    """The suite's search on the parity case (bench.lmbff.auto_templates.search_templates)."""
    from bench.lmbff.auto_templates import search_templates

    model, tok = parity_t5()
    return search_templates(model, tok, task, case_examples(task), TEMPLATE_CASES[task]["beam"],
                            progress=lambda it, _desc: it)


def ours_labels() -> dict[str, Any]:
    from bench.lmbff.auto_labels import likely_words, search_mappings

    case = label_case()
    logits, labels = np.array(case["logits"], dtype=np.float32), np.array(case["labels"])
    found = search_mappings(logits, labels, case["vocab"], case["k_likely"], case["n_pairs"])
    return {"likely": likely_words(logits, labels, case["vocab"], case["k_likely"]),
            "pairings": [list(m.token_ids) for m in found], "train_accuracy": [m.train_accuracy for m in found]}


def golden() -> dict[str, Any]:
    return load_golden(STUDY, "search")


def regenerate(ref: Path, rest: list[str]) -> list[Path]:
    """Run LM-BFF's search code on the parity cases and write the golden file."""
    head = check_checkout(ref, SPEC)
    python = ensure_venv(SPEC)
    from transformers import AutoTokenizer

    from bench.parity.lmbff_suite import tokenizer as roberta_tokenizer  # noqa: F401  (builds the tiny models)

    t5_tok = AutoTokenizer.from_pretrained(str(t5_snapshot()))
    with tempfile.TemporaryDirectory(prefix="lmbff_auto_parity_") as tmp:
        work = Path(tmp)
        model_dir = export_t5(work / "t5")
        jobs: dict[str, Any] = {"labels": {"kind": "labels", **label_case()}}
        for task, case in TEMPLATE_CASES.items():
            examples = case_examples(task)
            rows = [{"text_a": f[0], "text_b": f[1] if len(f) > 1 else None, "label": label} for f, label in examples]
            jobs[f"templates/{task}"] = {"kind": "templates", "task": task, "seed": case["seed"], "beam": case["beam"],
                                         "rows": rows, "model_dir": str(model_dir), "table": _table(t5_tok, examples)}
        (work / "request.json").write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
        run_ref_script(python, Path(__file__).with_name("lmbff_auto_ref.py"),
                       [str(work / "request.json"), str(work / "answer.json")], ref)
        answer = json.loads((work / "answer.json").read_text(encoding="utf-8"))
    payload = {"reference": f"{SPEC.repo}@{head[:12]}", "environment": answer["versions"],
               "patches": ["Tensor.cuda returns the tensor (no GPU)",
                           "the tokenizer: a table of the suite tokenizer's encodings (transformers 3.4's "
                           "T5Tokenizer needs a sentencepiece file the tiny T5 lacks)"],
               "template_cases": TEMPLATE_CASES, "boost": BOOST, "label_case": LABEL_CASE,
               "templates": {task: answer["jobs"][f"templates/{task}"] for task in TEMPLATE_CASES},
               "labels": answer["jobs"]["labels"]}
    return [write_golden(STUDY, "search", payload)]
