"""``python -m bench.parity fewglue``: regenerate the FewGLUE goldens (inputs, PET's stage, fixed-weight losses,
PT-Fewshot's prompt encoder). Kept apart from :mod:`bench.parity.fewglue`, which the losses and prompt parts import."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.parity import (
    fewglue_classifier,
    fewglue_losses,
    fewglue_optim,
    fewglue_prompt,
    fewglue_ptlosses,
    fewglue_slow_bert,
)
from bench.parity.fewglue import (
    MODELS,
    PET_TASK,
    REFERENCES,
    SET_TYPE,
    SPEC,
    STUDY,
    _rows,
    max_seq_length,
    patterns,
    selection,
    stage_inputs,
)
from bench.parity.fewglue_tokenizers import export_tokenizer
from bench.parity.golden import write_golden
from bench.parity.refenv import check_checkout, ensure_venv, run_ref_script
from bench.paths import data_dir


# the reference side ----------------------------------------------------------------------------------------------
def regenerate(ref: Path, args: Sequence[str]) -> list[Path]:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.parity fewglue")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated tiny models")
    parser.add_argument("--reference", choices=sorted(REFERENCES), default="pet",
                        help="pet: --ref is timoschick/pet; ptfewshot: --ref is THUDM/P-tuning (its PT-Fewshot/)")
    parser.add_argument("--tasks", default=None, help="comma-separated FewGLUE tasks (default: all the reference has)")
    parser.add_argument("--parts", default="inputs,stage,losses,optimizer,prompt,slow_bert,classifier",
                        help="inputs (per model x task); PET: stage (its ensemble), losses (fixed weights, every "
                             "pattern, per model), optimizer (transformers 3.0.2's AdamW + warmup schedule), "
                             "slow_bert (3.0.2's BertTokenizer on every FewGLUE text), classifier (the distilled "
                             "classifier's inputs); PT-Fewshot: losses (fixed weights, every template, per model), "
                             "prompt (its prompt encoder on fixed weights)")
    opts = parser.parse_args(list(args))
    reference = REFERENCES[opts.reference]
    head = check_checkout(ref, reference.spec)
    python = ensure_venv(reference.spec)
    env = {"PYTHONPATH": str(ref / reference.subdir)} if reference.subdir else None
    tasks = opts.tasks.split(",") if opts.tasks else list(reference.tasks)
    root = data_dir()
    written: list[Path] = []
    parts = opts.parts.split(",") if opts.reference == "pet" else [p for p in opts.parts.split(",") if p != "stage"]
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
        if "losses" in parts and opts.reference == "pet":
            models = [m for m in opts.models.split(",") if m in fewglue_losses.MODELS]
            written.extend(fewglue_losses.regenerate(python, ref, head, work, models))
        if "optimizer" in parts and opts.reference == "pet":
            written.append(fewglue_optim.regenerate(python, ref, head, work))
        if "slow_bert" in parts and opts.reference == "pet":
            written.append(fewglue_slow_bert.regenerate(python, ref, head, work))
        if "classifier" in parts and opts.reference == "pet":
            written.extend(fewglue_classifier.regenerate(python, ref, head, work, opts.models.split(",")))
        if "losses" in parts and opts.reference == "ptfewshot":
            models = [m for m in opts.models.split(",") if m in fewglue_losses.MODELS]
            written.extend(fewglue_ptlosses.regenerate(python, ref, head, work, env, models))
        if "prompt" in parts and opts.reference == "ptfewshot":
            written.append(fewglue_prompt.regenerate(python, ref, head, work, env))
        for model in opts.models.split(",") if "inputs" in parts else []:
            job: dict[str, Any] = {"model_type": MODELS[model],
                                   "flavour": opts.reference,
                                   "tokenizer": export_tokenizer(model, work / model), "out": str(work / f"{model}.json"),
                                   "tasks": {}}
            selections = {}
            for task in tasks:
                selections[task] = selection(task, root)
                splits = {}
                for split, spec in selections[task].items():
                    path = work / f"{task}-{split}.jsonl"
                    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(spec, root)), encoding="utf-8")
                    splits[split] = [str(path), SET_TYPE[split]]
                job["tasks"][PET_TASK[task]] = {"patterns": patterns(task, opts.reference), "splits": splits,
                                                "max_seq_length": max_seq_length(model, task, opts.reference)}
            job_file = work / f"{model}-job.json"
            job_file.write_text(json.dumps(job))
            run_ref_script(python, Path(__file__).with_name("fewglue_ref.py"), [str(job_file)], ref, env)
            result = json.loads(Path(job["out"]).read_text())
            for task in tasks:
                payload = {"reference": f"{reference.spec.repo}@{head}", "model": model, "task": task,
                           "max_seq_length": job["tasks"][PET_TASK[task]]["max_seq_length"],
                           "selection": selections[task],
                           "patterns": result["tasks"][PET_TASK[task]]}
                written.append(write_golden(STUDY, f"{reference.golden}_{model}_{task}", payload))
    return written
