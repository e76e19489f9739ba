"""AutoPrompt parity: one trigger-search iteration of ucinlp/autoprompt's own code against ``bench.search``.

``regenerate`` writes tiny-bert as AutoPrompt's ``load_pretrained`` reads it (config.json,
pytorch_model.bin, vocab.txt), the first LAMA P17 train facts the suite keeps as a jsonl file, and
runs ``autoprompt_ref.py`` in the reference environment for two triggers (all ``[MASK]``, as a
search starts, and three words). The golden file holds the token ids, each fact's loss, and per
trigger position the 10 HotFlip candidates and their summed gold log-probabilities.
``compare`` recomputes all of it with the suite (``bench.search.triggers`` / ``hotflip``).

Environment: LM-BFF's reference environment (Python 3.8, torch 1.6.0, transformers 3.4.0), not
AutoPrompt's pins (torch 1.4.0, transformers 2.9.1, Python 3.7): it already exists, and what is
compared behaves the same there (slow BERT tokenizer by default, models return tuples). Patches: none.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.parity.golden import load_golden, write_golden
from bench.parity.lmbff import SPEC as LMBFF_ENV
from bench.parity.refenv import check_checkout, ensure_venv, run_ref_script

STUDY = "autoprompt"
SPEC = dataclasses.replace(LMBFF_ENV, repo="ucinlp/autoprompt", commit="d637675")  # same venv (name, packages)
MODEL, RELATION, N_FACTS, NUM_CAND = "tiny-bert", "P17", 12, 10
REF_TEMPLATE = "[CLS] {sub_label} [T] [T] [T] [P] . [SEP]"  # the reference's fact-retrieval form, 3 triggers
SUITE_TEMPLATE = "[X] [P:3] [Y] ."
TRIGGERS = (["[MASK]"] * 3, ["located", "in", "country"])


def _backbone():
    from bench.backbones import load_backbone, load_model_config

    return load_backbone(load_model_config(MODEL), device="cpu", dtype="fp32")


def facts() -> list[dict[str, str]]:
    """The first ``N_FACTS`` P17 train facts whose object is one token of the LAMA-34k list (the suite's filter)."""
    from bench.lama import data as lama_data
    from bench.lama.evaluation import build_candidates

    backbone = _backbone()
    cands = build_candidates(lama_data.load_vocab("lama34k", backbone.lama_vocab_key), backbone.tokenizer, "mlm")
    kept, _ = lama_data.filter_facts(lama_data.load_facts(RELATION, "train", "lama34k", train_facts="original"),
                                     set(cands.word_to_id))
    return [{"sub_label": f.sub_label, "obj_label": f.obj_label} for f in kept[:N_FACTS]]


def regenerate(ref: Path, args: Sequence[str]) -> list[Path]:
    from bench.parity.fewglue import _snapshot, export_tokenizer
    from bench.parity.superglue_models import write_checkpoint

    head = check_checkout(ref, SPEC)
    python = ensure_venv(SPEC)
    rows = facts()
    with tempfile.TemporaryDirectory(prefix="autoprompt-parity-") as tmp:
        work = Path(tmp)
        folder = write_checkpoint(_backbone(), work / MODEL, _snapshot(MODEL))
        tok = export_tokenizer(MODEL, folder)
        (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": tok["lowercase"]}))
        (work / "facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        job = {"model_dir": str(folder), "template": REF_TEMPLATE, "facts": str(work / "facts.jsonl"),
               "triggers": [list(t) for t in TRIGGERS], "num_cand": NUM_CAND, "out": str(work / "out.json")}
        (work / "job.json").write_text(json.dumps(job))
        run_ref_script(python, Path(__file__).with_name("autoprompt_ref.py"), [str(work / "job.json")], ref)
        result = json.loads((work / "out.json").read_text())
    payload = {"reference": f"{SPEC.repo}@{head}", "model": MODEL, "relation": RELATION, "facts": rows,
               "template": REF_TEMPLATE, **result}
    return [write_golden(STUDY, f"iteration_{MODEL}_{RELATION}", payload)]


def suite_side(golden: dict[str, Any]) -> dict[str, Any]:
    """The same quantities from the suite: rendered ids, losses, candidates and their scores."""
    from bench.lama.data import Fact
    from bench.lama.evaluation import build_candidates, render_facts
    from bench.prompts.template import parse_template
    from bench.search.hotflip import hotflip_candidates
    from bench.search.triggers import TriggerBatch, filled, gold_logprob, trigger_gradient

    backbone = _backbone()
    tok, model = backbone.tokenizer, backbone.model
    rows = [Fact(RELATION, r["sub_label"], r["obj_label"]) for r in golden["facts"]]
    cands = build_candidates([r.obj_label for r in rows], tok, "mlm")
    items = render_facts(rows, parse_template(SUITE_TEMPLATE), tok, "mlm", cands)
    tb = TriggerBatch.of(items, tok.pad_token_id, torch.device("cpu"))
    emb = model.get_input_embeddings().weight
    cases = []
    for case in golden["cases"]:
        trigger = torch.tensor(tok.convert_tokens_to_ids(case["trigger"]))
        ids = filled(tb, trigger[None]).input_ids
        grad = trigger_gradient(model, tb, trigger)
        positions = []
        for pos in range(len(trigger)):
            top = hotflip_candidates(grad[pos], emb, NUM_CAND)
            options = trigger.repeat(NUM_CAND, 1)
            options[:, pos] = top
            positions.append({"candidates": top.tolist(), "scores": gold_logprob(model, tb, options).sum(-1).tolist()})
        cases.append({"trigger_ids": trigger.tolist(),
                      "input_ids": [ids[i, : len(it.input_ids)].tolist() for i, it in enumerate(items)],
                      "losses": (-gold_logprob(model, tb, trigger[None])[0]).tolist(), "positions": positions})
    return {"labels": [it.gold_id for it in items], "trigger_positions": [it.soft_positions for it in items],
            "predict_positions": [it.target_positions for it in items], "cases": cases}


def golden() -> dict[str, Any]:
    return load_golden(STUDY, f"iteration_{MODEL}_{RELATION}")
