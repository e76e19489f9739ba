"""FewGLUE parity with fixed weights: PT-Fewshot's training losses (THUDM/P-tuning @f4225d4) beside the suite's
P-Tuning presets (``fewglue_ptuning_<task>``), per task x template x tiny model.

``python -m bench.parity fewglue --ref /path/to/P-tuning --reference ptfewshot --parts losses`` writes each tiny
model as transformers 3.0.2 reads it (:func:`bench.parity.fewglue_losses.export_model`), runs
``fewglue_ptlosses_ref.py`` in PT-Fewshot's environment and keeps, per case, its loss on one batch of its first
``N`` training examples and per micro-batch of ``MICRO``, the label logits, and the input embedding rows written at
the first example's pseudo-token positions (golden ``ptlosses_<model>``). Both
sides get the same prompt encoder: the LSTM encoder on :func:`bench.parity.fewglue_prompt.weights`' sine pattern,
sized as PT-Fewshot sizes it (``embed_size`` = the model's input embedding width, its hidden size too).
CI: ``tests/parity/test_fewglue_ptlosses.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch

from bench.parity.fewglue_losses import MICRO, MODELS, N, batch_loss, export_model, head_eps, scaled_diff
from bench.parity.golden import load_golden, max_rel_diff, write_golden
from bench.parity.refenv import run_ref_script


@dataclass(frozen=True)
class Case:
    task: str
    pattern: int  # PT-Fewshot's pattern id = its number of pseudo tokens

    @property
    def name(self) -> str:
        return f"{self.task.lower()}_t{self.pattern}"


def golden_name(model: str) -> str:
    return f"ptlosses_{model}"


def cases() -> tuple[Case, ...]:
    """Every task x template of the suite's ``conf/template/ptuning_<task>.yaml`` (PT-Fewshot has no ReCoRD)."""
    from bench.parity.fewglue import REFERENCES, patterns

    return tuple(Case(t, p) for t in REFERENCES["ptfewshot"].tasks for p in patterns(t, "ptfewshot"))


def embed_size(model: str) -> int:
    """PT-Fewshot's ``--embed_size`` for the model: its input embedding width (ALBERT's factorised 32 here)."""
    from bench.parity.fewglue import _backbone

    return int(_backbone(model, "ptfewshot").model.get_input_embeddings().weight.shape[1])


def regenerate(python: Path, ref: Path, head: str, work: Path, env: dict[str, str] | None,
               models: Sequence[str] = MODELS) -> list[Path]:
    """Run PT-Fewshot's side for every case on each model and write one golden file per model."""
    from bench.parity.fewglue import _rows, max_seq_length, selection
    from bench.parity.fewglue_prompt import weights
    from bench.parity.fewglue_tokenizers import MODELS as MODEL_TYPES
    from bench.paths import data_dir

    written = []
    for model in models:
        dim, jobs = embed_size(model), []
        for case in cases():
            path = work / f"ptlosses-{case.task}-train.jsonl"
            rows = _rows(selection(case.task)["train"], data_dir())
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            jobs.append({"name": case.name, "task": case.task.lower(), "pattern": case.pattern, "file": str(path),
                         "n": N, "micro": MICRO, "max_seq_length": max_seq_length(model, case.task, "ptfewshot"),
                         "weights": weights(case.pattern, dim)})
        job = {"model_dir": str(export_model(work / f"ptlosses-{model}", model=model)),
               "model_type": MODEL_TYPES[model], "embed_size": dim, "cases": jobs,
               "out": str(work / f"ptlosses-{model}.json")}
        (work / "ptlosses-job.json").write_text(json.dumps(job))
        run_ref_script(python, Path(__file__).with_name("fewglue_ptlosses_ref.py"), [str(work / "ptlosses-job.json")],
                       ref, env)
        result = json.loads((work / f"ptlosses-{model}.json").read_text())
        payload = {"reference": f"THUDM/P-tuning@{head}", "model": model, "embed_size": dim, "n": N, "micro": MICRO,
                   "weights": "bench.parity.fewglue_prompt.weights (sine pattern, salt per sorted parameter, scale 0.3)",
                   **result}
        written.append(write_golden("fewglue", golden_name(model), payload))
    return written


# the suite side --------------------------------------------------------------------------------------------------
@cache
def suite_runner(model: str, task: str, pattern: int):
    """``fewglue_ptuning_<task>`` with the template's pattern and PT-Fewshot's encoder size (hidden = embed_size),
    its encoder given the golden's fixed weights, eval mode."""
    import copy

    from hydra.utils import instantiate

    from bench.parity.fewglue import _backbone, _composed
    from bench.parity.fewglue_prompt import encoder
    from bench.superglue.task import ClassificationTask

    cfg = copy.deepcopy(_composed(model, task, "ptfewshot"))
    dim = embed_size(model)
    cfg["template"]["rank"] = pattern
    cfg["method"]["component"]["hidden_size"] = dim  # PT-Fewshot: the LSTM's hidden size is embed_size
    backbone = _backbone(model, "ptfewshot")
    method = instantiate(cfg["method"]["component"])
    method.setup(backbone)
    runner = ClassificationTask(cfg, backbone, method)
    if method.encoder.num_tokens != pattern:
        raise AssertionError(f"{task} template {pattern}: {method.encoder.num_tokens} pseudo tokens, PT-Fewshot has "
                             f"{pattern}")
    method.encoder.load_state_dict(encoder(pattern, dim).state_dict())
    method.encoder.eval()
    return runner


def suite_case(model: str, case: Case) -> dict[str, Any]:
    """The suite's loss (one batch, and per micro-batch), label logits, example ids, and the first example's input
    embedding rows at its pseudo-token positions (``embed_batch``: where the prompt encoder's vectors go)."""
    from bench.methods.soft import embed_batch

    runner = suite_runner(model, case.task, case.pattern)
    runner.backbone.model.eval()
    items = runner.items("train", train=True)[:N]
    with head_eps(model, "ptfewshot"), torch.no_grad():  # ALBERT's head eps as the preset loads it (3.0.2's)
        loss, logits = batch_loss(runner, items)
        micro = [float(batch_loss(runner, items[i : i + MICRO])[0]) for i in range(0, N, MICRO)]
        first = runner.collate(items[:1])
        embeds = embed_batch(runner.backbone.model, first, runner.method.prompt_vectors()).inputs_embeds[0]
    positions = first.soft_cols[first.soft_rows == 0].tolist()
    return {"loss": float(loss), "micro_losses": micro, "logits": logits.tolist(),
            "uids": [it.example.uid for it in items], "prompt_positions": positions,
            "prompt_rows": embeds[positions].tolist()}


def compare(model: str) -> dict[str, dict[str, Any]]:
    """Per case: max relative differences suite vs PT-Fewshot (loss, micro-batch losses; logits relative to the
    batch's largest), or the reference's error where it cannot run the template."""
    gold = load_golden("fewglue", golden_name(model))
    out: dict[str, dict[str, Any]] = {}
    for case in cases():
        theirs = gold["cases"][case.name]
        if "error" in theirs:
            out[case.name] = {"error": theirs["error"]}
            continue
        ours = suite_case(model, case)
        out[case.name] = {"loss": max_rel_diff(ours["loss"], theirs["loss"]),
                          "micro_losses": max_rel_diff(ours["micro_losses"], theirs["micro_losses"]),
                          "logits": scaled_diff(ours["logits"], theirs["logits"]) if "logits" in theirs else None,
                          "prompt_rows": scaled_diff(ours["prompt_rows"], theirs["prompt_rows"]),
                          "same_positions": ours["prompt_positions"] == theirs["prompt_positions"],
                          "same_examples": ours["uids"] == [g.replace("train-p", "train-") for g in theirs["guids"]]}
    return out
