"""Optimizer parity: the optimizer and schedule PET, PT-Fewshot, LM-BFF and P-Tuning v2 train with (transformers'
``AdamW`` and ``get_linear_schedule_with_warmup``, run in each reference's environment: transformers 3.0.2, 3.4.0,
4.11.3) beside the suite's ``trainer.optimizer: adamw_hf`` and ``trainer.warmup_rule: hf``
(``bench.legacy_adamw``, ``bench.train.build_schedule``).

``python -m bench.parity fewglue --ref /path/to/pet --parts optimizer`` writes the golden ``optimizer``: every
parameter after each of :data:`STEPS` steps on fixed gradients (two groups, with and without weight decay; a
warmup, then the linear decay), and the lr of each step. CI: ``tests/parity/test_fewglue_optimizer.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from bench.parity.golden import write_golden
from bench.parity.refenv import run_ref_script
from bench.parity.superglue_models import pattern

GOLDEN = "optimizer"
STEPS, WARMUP = 10, 3
LR, EPS = 1e-3, 1e-8  # an lr large enough for the decay term and eps placement to show; --adam_epsilon 1e-8
DECAY = (0.1, 0.0)  # PT-Fewshot's backbone decay; the no-decay group (bias, LayerNorm.weight)
SHAPES = ((4, 3), (5,))


def inputs() -> dict[str, Any]:
    """Initial parameters and per-step gradients (fixed sine patterns; gradients shrink near zero at some steps so
    that ``eps`` matters)."""
    init = [pattern(torch.Size(s), 1 + i, 0.5) for i, s in enumerate(SHAPES)]
    grads = [[pattern(torch.Size(s), 10 * step + i, 0.1 / (1 + 10 * (step % 3 == 2))) for i, s in enumerate(SHAPES)]
             for step in range(STEPS)]
    return {"groups": [{"init": t.tolist(), "weight_decay": d} for t, d in zip(init, DECAY, strict=True)],
            "grads": [[g.tolist() for g in step] for step in grads], "lr": LR, "eps": EPS, "warmup": WARMUP,
            "total": STEPS}


def environments(pet_python: Path) -> dict[str, Path]:
    """The references' environments whose ``transformers.AdamW`` and schedule the suite's flags stand for: PET /
    PT-Fewshot (3.0.2), LM-BFF (3.4.0, ``src/trainer.py``) and P-Tuning v2 (4.11.3, the HF Trainer's defaults)."""
    from bench.parity import lmbff, superglue
    from bench.parity.refenv import ensure_venv

    return {"transformers 3.0.2 (timoschick/pet, THUDM/P-tuning PT-Fewshot)": pet_python,
            "transformers 3.4.0 (princeton-nlp/LM-BFF)": ensure_venv(lmbff.SPEC),
            "transformers 4.11.3 (THUDM/P-tuning-v2)": ensure_venv(superglue.SPEC)}


def regenerate(python: Path, ref: Path, head: str, work: Path) -> Path:
    """The driver in each of :func:`environments` (it imports only torch and transformers; ``ref`` is its cwd)."""
    job = {**inputs(), "out": str(work / "optimizer.json")}
    (work / "optimizer-job.json").write_text(json.dumps(job))
    runs = {}
    for label, env_python in environments(python).items():
        run_ref_script(env_python, Path(__file__).with_name("fewglue_optim_ref.py"), [str(work / "optimizer-job.json")],
                       ref)
        runs[label] = json.loads((work / "optimizer.json").read_text())
    return write_golden("fewglue", GOLDEN, {"reference": f"timoschick/pet@{head} and the environments named",
                                            "inputs": "bench.parity.fewglue_optim.inputs()", "environments": runs})


def suite_run(optimizer: str = "adamw_hf", warmup_rule: str = "hf") -> dict[str, list]:
    """The suite's optimizer and schedule as ``bench.train`` builds them, on the same parameters and gradients."""
    from bench.train import build_schedule

    data = inputs()
    params = [torch.nn.Parameter(torch.tensor(g["init"])) for g in data["groups"]]
    groups = [{"params": [p], "weight_decay": g["weight_decay"]} for p, g in zip(params, data["groups"], strict=True)]
    trainer = {"optimizer": optimizer, "lr": LR, "schedule": "linear", "warmup_steps": WARMUP,
               "warmup_rule": warmup_rule}
    opt = _optimizer(groups, trainer)
    scheduler, _ = build_schedule(opt, trainer, STEPS)
    out: dict[str, list] = {"params": [], "lrs": []}
    for grads in data["grads"]:
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.tensor(g)
        out["lrs"].append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
        out["params"].append([p.detach().tolist() for p in params])
    return out


def _optimizer(groups: list[dict[str, Any]], trainer: dict[str, Any]) -> torch.optim.Optimizer:
    """``bench.train.build_optimizer``'s choice for ``trainer.optimizer`` on ready-made parameter groups."""
    from bench.legacy_adamw import LegacyAdamW

    if trainer["optimizer"] == "adamw_hf":
        return LegacyAdamW(groups, lr=trainer["lr"], eps=EPS)
    return torch.optim.AdamW(groups, lr=trainer["lr"], eps=EPS)
