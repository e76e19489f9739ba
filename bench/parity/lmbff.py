"""LM-BFF parity (princeton-nlp/LM-BFF @c282f52): ``python -m bench.parity lmbff --ref /path/to/LM-BFF``.

Builds a request from the suite's prepared data (``data/lm-bff``) and the tiny RoBERTa's tokenizer
and weights, runs ``bench/parity/lmbff_ref.py`` in LM-BFF's own environment (Python 3.8,
transformers 3.4.0, torch 1.6.0), and writes ``tests/golden/parity/lmbff/``:

- ``prompt_inputs``: every Table 1 template / label-word case and the fine-tuning input, SST-2 and
  SNLI, on train and dev of splits 16-13 and 16-21 and on 50 test rows plus the 5 longest.
- ``demo_inputs``: prompt + one demonstration per label (fixed train ids); ``icl_inputs``: the
  GPT-3-style input with 32 (SST-2) / 48 (SNLI) fixed demonstrations, 512 tokens, head cut.
- ``filter_candidates``: the Sentence-BERT filter's candidate lists on fixed random embeddings.
- ``model``: prompt-based loss and label-word logits of the tiny RoBERTa on a fixed batch of dev
  inputs with demonstrations, before and after one plain SGD step (the untied LM head).

Golden files hold row numbers, token ids, embeddings and floats only (never texts or LM-BFF code).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.parity.golden import IdsComparison, compare_ids, load_golden, max_rel_diff, write_golden
from bench.parity.refenv import RefSpec, check_checkout, ensure_venv, run_ref_script

STUDY = "lmbff"
SPEC = RefSpec(
    name="lmbff-c282f52", repo="princeton-nlp/LM-BFF", commit="c282f52", python="3.8",
    requirements=(
        "torch==1.6.0", "transformers==3.4.0", "tokenizers==0.9.2", "sentence-transformers==0.4.0",
        "numpy==1.19.4", "pandas==1.1.5", "scikit-learn==0.24.0", "scipy==1.5.4", "sentencepiece==0.1.94",
        "filelock==3.0.12", "regex==2021.11.10", "sacremoses==0.0.43", "protobuf==3.14.0", "tqdm==4.48.2",
        "nltk==3.6.7", "packaging==20.8", "requests==2.25.1", "six==1.15.0",
    ),
    patches=(
        "requirements.txt pins regex==2020.11.13 beside nltk>=3.6.4, which needs regex>=2021.8.3: regex==2021.11.10",
        "dataclasses==0.8 (a Python 3.6 backport) left out: Python 3.8 has dataclasses",
        "run.py's template expansion (inline in main) is read from the checkout and executed as it stands",
    ),
)
# LM-BFF's notation (src/dataset.py tokenize_multipart_input) for Table 1; rank 0 is run_experiment.sh's
TEMPLATES: dict[str, dict[int, str]] = {
    "SST-2": {r: "*cls**sent_0*_It_was*mask*.*sep+*" for r in range(5)},
    "SNLI": {0: "*cls**sent-_0*?*mask*,*+sentl_1**sep+*", 1: "*cls**sent-_0*.*mask*,*+sentl_1**sep+*",
             2: "*cls**sent-_0*?*mask**+sentl_1**sep+*", 3: "*cls**sent_0**+sent_1**mask**sep+*",
             4: "*cls**sent-_1*?*mask*,*+sentl_0**sep+*", 5: "*cls**sent-_0*?*mask*,*+sentl_1**sep+*"},
}
MAPPINGS: dict[str, dict[int, str]] = {
    "SST-2": {0: "{'0':'terrible','1':'great'}", 1: "{'0':'bad','1':'good'}", 2: "{'0':'dog','1':'cat'}",
              3: "{'0':'cat','1':'dog'}", 4: "{'0':'great','1':'terrible'}"},
    "SNLI": {r: "{'contradiction':'No','entailment':'Yes','neutral':'Maybe'}" for r in range(5)}
    | {5: "{'contradiction':'Yes','entailment':'Maybe','neutral':'No'}"},
}
MAX_LENGTH = {"SST-2": 128, "SNLI": 256}  # run_experiment.sh: 128; SNLI --max_seq_len 256
SEEDS = (13, 21)  # data splits whose train and dev are compared whole (>= 50 examples per split)
N_TEST, N_LONGEST = 50, 5  # test rows: the first N_TEST and the N_LONGEST longest (characters)
TEST_SPLITS = {"SST-2": {"test": None}, "SNLI": {"test_esnli": "SNLI/test_esnli.jsonl"}}
FILTER_DIM, FILTER_RATE = 16, 0.5
MODEL_ROWS = 8  # dev rows (spread over the file) in the fixed batch
SGD_LR = 5.0  # one plain SGD step on that batch: shows which weights the gradient reaches (the untied LM head)


def _lm_bff_root() -> Path:
    from bench.paths import data_dir

    return data_dir() / "lm-bff"


def test_files(task: str) -> dict[str, str | None]:
    """Test split name -> the file the suite reads (None: the task's default test file)."""
    return {split: (str(_lm_bff_root() / rel) if rel else None) for split, rel in TEST_SPLITS[task].items()}


def _rows(task: str, split: str, seed: int) -> list[dict[str, Any]]:
    from bench.lmbff import data as kd
    from bench.methods.pet import PatternTuning
    from bench.parity.lmbff_suite import make_task

    files = test_files(task)
    kt = make_task(task, PatternTuning(), seed=seed, rank=0, test_file=files.get(split))
    base = "test" if split.startswith("test") else split
    out = []
    for ex in kt.examples(base):
        f = ex.fields
        a, b = (f["sentence"], None) if task == "SST-2" else (f["premise"], f["hypothesis"])
        out.append({"row": ex.meta["row"], "text_a": a, "text_b": b, "label": kd.LABELS[task][ex.label]})
    return out


def selection(task: str) -> dict[str, dict[str, list[int]]]:
    """seed -> split -> rows compared: train and dev whole, test: the first rows and the longest."""
    out: dict[str, dict[str, list[int]]] = {}
    for seed in SEEDS:
        out[str(seed)] = {split: [r["row"] for r in _rows(task, split, seed)] for split in ("train", "dev")}
    for split in TEST_SPLITS[task]:
        rows = _rows(task, split, SEEDS[0])
        longest = sorted(rows, key=lambda r: -len(r["text_a"] + (r["text_b"] or "")))[:N_LONGEST]
        out[str(SEEDS[0])][split] = sorted({r["row"] for r in rows[:N_TEST]} | {r["row"] for r in longest})
    return out


def _tsv_rows(task: str, split: str, seed: int, rows: Sequence[int] | None, keyed=True) -> list[dict[str, Any]]:
    wanted = None if rows is None else set(rows)
    out = []
    for r in _rows(task, split, seed):
        if wanted is None or r["row"] in wanted:
            key = f"{r['row']}" if split.startswith("test") else f"{seed}:{r['row']}"
            out.append({"key": key if keyed else str(r["row"]), **r})
    return out


def _lmbff_task(task: str) -> str:
    return {"SST-2": "sst-2", "SNLI": "snli"}[task]


def demo_choices(task: str, seed: int, sel: dict[str, list[int]], n_labels: int) -> dict[str, list[dict]]:
    """Fixed demonstrations: train/dev one draw per query (one per label), test 4 draws per query."""
    train = _rows(task, "train", seed)
    by_label: dict[str, list[int]] = {}
    for r in train:
        by_label.setdefault(r["label"], []).append(r["row"])
    from bench.lmbff.data import LABELS

    out: dict[str, list[dict]] = {}
    for split, rows in sel.items():
        draws = 4 if split.startswith("test") else 1
        items = []
        for row in rows:
            for draw in range(draws):
                rng = random.Random(f"{task}:{split}:{row}:{draw}")
                demos = [rng.choice([i for i in by_label[label] if not (split == "train" and i == row)])
                         for label in LABELS[task]]
                items.append({"id": f"{row}#{draw}", "row": row, "key": str(row), "demos": demos})
        out[split] = items
    return out


def icl_choices(task: str, seed: int, sel: dict[str, list[int]]) -> dict[str, list[dict]]:
    """Fixed GPT-3-style contexts: 32 train rows (a seeded shuffle) in input order, for dev and test
    queries (ICL never trains; a train query would have 31 candidates for LM-BFF's 32 slots)."""
    n_train = len(_rows(task, "train", seed))
    out = {}
    for split, rows in sel.items():
        if split == "train":
            continue
        items = []
        for row in rows[:20]:
            pool = list(range(n_train))
            random.Random(f"icl:{task}:{split}:{row}").shuffle(pool)
            items.append({"id": str(row), "row": row, "key": str(row), "demos": pool[:32]})
        out[split] = items
    return out


def fixed_embeddings(task: str, seed: int) -> dict[str, list[list[float]]]:
    """Seeded Gaussian vectors (rounded to 6 decimals, so both sides read the same float32 values)."""
    out = {}
    for split in ("train", "dev"):
        rng = random.Random(f"emb:{task}:{seed}:{split}")
        n = len(_rows(task, split, seed))
        out[split] = [[round(rng.gauss(0.0, 1.0), 6) for _ in range(FILTER_DIM)] for _ in range(n)]
    return out


def export_tokenizer(folder: Path) -> Path:
    """vocab.json + merges.txt of the tiny RoBERTa (its tokenizer.json) for transformers 3.4's RobertaTokenizer."""
    from bench.parity.lmbff_suite import snapshot_dir

    spec = json.loads((snapshot_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(spec["model"]["vocab"], ensure_ascii=False), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = json.loads((snapshot_dir() / "config.json").read_text(encoding="utf-8"))
    keep = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
            "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id")
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta", "architectures": ["RobertaForMaskedLM"],
                                                    **{k: config[k] for k in keep}}), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}), encoding="utf-8")
    return folder


def export_weights(folder: Path) -> None:
    """The tiny RoBERTa's weights as pytorch_model.bin, with the LM head's output weights written out
    (the tied embedding matrix, as Hugging Face's roberta checkpoints store ``lm_head.decoder.weight``)."""
    import torch
    from safetensors.torch import load_file

    from bench.parity.lmbff_suite import snapshot_dir

    state = load_file(str(snapshot_dir() / "model.safetensors"))
    state.setdefault("lm_head.decoder.weight", state["roberta.embeddings.word_embeddings.weight"])
    state.setdefault("lm_head.decoder.bias", state["lm_head.bias"])
    torch.save({k: v.clone().contiguous() for k, v in state.items()}, folder / "pytorch_model.bin")


def build_request(workdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reference's request and the selections the goldens record."""
    from bench.lmbff.data import LABELS

    tok_dir = export_tokenizer(workdir / "model")
    export_weights(tok_dir)
    jobs: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    for task in ("SST-2", "SNLI"):
        sel = selection(task)
        recorded[task] = {"selection": sel}
        groups = []
        for seed_text, splits in sel.items():
            seed = int(seed_text)
            files = {s: _tsv_rows(task, s, seed, rows if s.startswith("test") else None) for s, rows in splits.items()}
            files["train"] = _tsv_rows(task, "train", seed, None)
            tsv = {("test" if s.startswith("test") else s): v for s, v in files.items()}
            groups.append({"files": tsv, "queries": sorted(tsv)})
        for rank in sorted(TEMPLATES[task]):
            jobs[f"{task}/prompt/{rank}"] = {"kind": "prompt", "task": _lmbff_task(task), "groups": groups,
                                            "template": TEMPLATES[task][rank], "mapping": MAPPINGS[task][rank],
                                            "max_length": MAX_LENGTH[task]}
        jobs[f"{task}/finetune"] = {"kind": "finetune", "task": _lmbff_task(task), "groups": groups,
                                    "max_length": MAX_LENGTH[task]}
        seed = SEEDS[0]
        sel0 = sel[str(seed)]
        files = {("test" if s.startswith("test") else s): _tsv_rows(task, s, seed, None if not s.startswith("test")
                                                                    else rows, keyed=False)
                 for s, rows in sel0.items()}
        for kind, choices in (("demo", demo_choices(task, seed, sel0, len(LABELS[task]))),
                              ("icl", icl_choices(task, seed, sel0))):
            recorded[task][kind] = choices
            jobs[f"{task}/{kind}"] = {"kind": kind, "task": _lmbff_task(task), "files": files,
                                     "template": TEMPLATES[task][0], "mapping": MAPPINGS[task][0],
                                     "max_length": MAX_LENGTH[task], "context": 32,
                                     "queries": {("test" if s.startswith("test") else s): q for s, q in choices.items()}}
        emb = fixed_embeddings(task, seed)
        recorded[task]["embeddings"] = emb
        jobs[f"{task}/filter"] = {"kind": "filter", "task": _lmbff_task(task), "embeddings": emb,
                                  "files": {s: files[s] for s in ("train", "dev")}, "queries": ["train", "dev"],
                                  "template": TEMPLATES[task][0], "mapping": MAPPINGS[task][0],
                                  "max_length": MAX_LENGTH[task], "rate": FILTER_RATE}
        n_dev = len(sel0["dev"])
        recorded[task]["model_rows"] = [i * n_dev // MODEL_ROWS for i in range(MODEL_ROWS)]
        recorded[task]["model_labels"] = [LABELS[task].index(r["label"]) for r in _rows(task, "dev", seed)]
    return {"tokenizer_dir": str(tok_dir), "jobs": jobs}, recorded


def regenerate(ref: Path, rest: list[str]) -> list[Path]:
    """Run LM-BFF's code on the suite's inputs and write the golden files."""
    head = check_checkout(ref, SPEC)
    python = ensure_venv(SPEC)
    with tempfile.TemporaryDirectory(prefix="lmbff_parity_") as tmp:
        work = Path(tmp)
        request, recorded = build_request(work)
        (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
        run_ref_script(python, Path(__file__).with_name("lmbff_ref.py"), [str(work / "request.json"),
                                                                          str(work / "answer.json")], ref)
        answer = json.loads((work / "answer.json").read_text(encoding="utf-8"))
        models = {}
        for task in ("SST-2", "SNLI"):  # the reference's own demonstration inputs and label words, fixed dev rows
            demo, words = answer["jobs"][f"{task}/demo"], answer["jobs"][f"{task}/prompt/0"]["label_word_ids"]
            rows = recorded[task]["model_rows"]
            feats = [demo["inputs"][f"dev/{r}#0"] for r in rows]
            models[f"{task}/model"] = {"kind": "model", "model_dir": request["tokenizer_dir"],
                                       "input_ids": [f["input_ids"] for f in feats],
                                       "mask_pos": [f["mask_pos"][0] for f in feats],
                                       "labels": [recorded[task]["model_labels"][r] for r in rows],
                                       "label_word_ids": words, "sgd_lr": SGD_LR}
        (work / "request2.json").write_text(json.dumps({**request, "jobs": models}), encoding="utf-8")
        run_ref_script(python, Path(__file__).with_name("lmbff_ref.py"), [str(work / "request2.json"),
                                                                          str(work / "answer2.json")], ref)
        answer["jobs"].update(json.loads((work / "answer2.json").read_text(encoding="utf-8"))["jobs"])
    meta = {"reference": f"{SPEC.repo}@{head[:12]}", "environment": answer["versions"], "model": "tiny-roberta",
            "patches": list(SPEC.patches)}
    written = []
    for task in ("SST-2", "SNLI"):
        jobs = {k.split("/", 1)[1]: v for k, v in answer["jobs"].items() if k.startswith(task + "/")}
        rec = recorded[task]
        for kind in ("demo", "icl"):  # the reference keys use the TSV split names; ours the suite's
            jobs[kind]["inputs"] = {_rename(k, task): v for k, v in jobs[kind]["inputs"].items()}
        for name in list(jobs):
            if name.startswith("prompt/") or name == "finetune":
                jobs[name]["inputs"] = {_rename(k, task): v for k, v in jobs[name]["inputs"].items()}
        payload = {"meta": meta, "selection": rec["selection"], "jobs": jobs, "demo": rec["demo"],
                   "icl": rec["icl"], "embeddings": rec["embeddings"], "model_rows": rec["model_rows"]}
        written.append(write_golden(STUDY, task.lower().replace("-", ""), payload))
    return written


def _rename(key: str, task: str) -> str:
    split, rest = key.split("/", 1)
    if split == "test":
        split = next(iter(TEST_SPLITS[task]))
    return f"{split}/{rest}"


def golden(task: str) -> dict[str, Any]:
    return load_golden(STUDY, task.lower().replace("-", ""))


def _by_split(ours: dict[str, Any], theirs: dict[str, Any], fields: Sequence[str]) -> dict[str, IdsComparison]:
    """Per split: identical n/n over the keys (each key compares ``fields`` together)."""
    splits = sorted({k.split("/", 1)[0] for k in set(ours) | set(theirs)})
    out = {}
    for split in splits:
        a = {k: [ours[k].get(f) for f in fields] for k in ours if k.startswith(split + "/")}
        b = {k: [theirs[k].get(f) for f in fields] for k in theirs if k.startswith(split + "/")}
        out[split] = compare_ids(a, b)
    return out


def compare(task: str) -> dict[str, dict[str, Any]]:
    """Case -> split -> IdsComparison (inputs, candidates), and case "model" -> loss / logit differences."""
    from bench.parity import lmbff_suite as suite

    gold = golden(task)
    jobs, sel = gold["jobs"], gold["selection"]
    files = test_files(task)
    out: dict[str, dict[str, Any]] = {}
    for rank in sorted(TEMPLATES[task]):
        ours, words = suite.prompt_inputs(task, rank, sel, files)
        theirs = jobs[f"prompt/{rank}"]
        out[f"prompt/{rank}"] = _by_split(ours, theirs["inputs"], ("input_ids", "mask_pos"))
        out[f"prompt/{rank}"]["label words"] = compare_ids({"ids": words}, {"ids": theirs["label_word_ids"]})
    ours, _ = suite.prompt_inputs(task, None, sel, files)
    out["finetune"] = _by_split(ours, jobs["finetune"]["inputs"], ("input_ids",))
    seed = SEEDS[0]
    for kind in ("demo", "icl"):
        queries = {split: items for split, items in gold[kind].items()}
        ours = suite.demo_inputs(task, kind, queries, seed, files)
        out[kind] = _by_split(ours, jobs[kind]["inputs"], ("input_ids", "mask_pos"))
    ours = suite.filter_candidates(task, gold["embeddings"], ["train", "dev"], seed, FILTER_RATE)
    theirs = jobs["filter"]["candidates"]
    out["filter"] = {split: compare_ids({k: v for k, v in ours.items() if k.startswith(split)},
                                        {k: v for k, v in theirs.items() if k.startswith(split)})
                     for split in ("train", "dev")}
    by_row = {q["row"]: q for q in gold["demo"]["dev"] if q["id"].endswith("#0")}
    mine = suite.model_outputs(task, [by_row[r] for r in gold["model_rows"]], seed, sgd_lr=SGD_LR)
    ref = jobs["model"]
    out["model"] = {"loss": max_rel_diff(mine["loss"], ref["loss"]), "logits": max_rel_diff(mine["logits"], ref["logits"]),
                    "n": len(gold["model_rows"]), "lm_head_tied_in_reference": ref["lm_head_tied_to_embeddings"],
                    "loss_after_step": max_rel_diff(mine["after_step"]["loss"], ref["after_step"]["loss"]),
                    "logits_after_step": max_rel_diff(mine["after_step"]["logits"], ref["after_step"]["logits"]),
                    "logits_after_step_tied": max_rel_diff(mine["after_step_tied"]["logits"], ref["after_step"]["logits"])}
    return out


def markdown(tasks: Sequence[str] = ("SST-2", "SNLI")) -> str:
    """The comparison as docs/parity.md shows it: identical n/n per case and split, loss / logit differences."""
    lines = ["| task | case | " + " | ".join(("train", "dev", "test")) + " |", "|---|---|---|---|---|"]
    models = []
    for task in tasks:
        res = compare(task)
        for case, splits in res.items():
            if case == "model":
                models.append((task, splits))
                continue
            cells = []
            for split in ("train", "dev", "test"):
                found = [c for s, c in splits.items() if s == split or (split == "test" and s.startswith("test"))]
                cells.append(f"{found[0].identical}/{found[0].n}" if found else "—")
            lines.append(f"| {task} | {case} | " + " | ".join(cells) + " |")
    lines += ["", "| task | batch | loss max rel diff | logits max rel diff | after one SGD step: loss / logits | "
              "same step, suite's tied head: logits |", "|---|---|---|---|---|---|"]
    for task, m in models:
        lines.append(f"| {task} | {m['n']} dev inputs with demonstrations | {m['loss']:.1e} | {m['logits']:.1e} | "
                     f"{m['loss_after_step']:.1e} / {m['logits_after_step']:.1e} | {m['logits_after_step_tied']:.1e} |")
    return "\n".join(lines)
