"""``make bench`` / ``python -m bench.speed``: speed at the papers' model sizes, random weights.

Prints, for every figure, ours / baseline measured in the same process (module docstrings of
:mod:`bench.speed.lama_eval` and :mod:`bench.speed.train_steps` say what each side does) and exits
1 when a prediction that must be identical is not (a difference within ``--tie`` of the other side's
best score counts as a tie).

``python -m bench.speed --size default --device auto``
"""

from __future__ import annotations

import argparse
import os
import time
import traceback
from pathlib import Path

import torch

from bench.device import pick_device
from bench.speed.measure import machine_line, matmul_peak, release_freed_memory_at_once

SIZES = {"small": ["bert-base-cased"],
         "default": ["bert-base-cased", "roberta-large", "gpt2-medium"],
         "paper": ["bert-base-cased", "bert-large-cased", "roberta-large", "gpt2-medium", "gpt2-xl"]}
PET_MODEL = "albert-xxlarge-v2"
# per device: facts per relation (base / large models), one-fact-loop facts, P-Tuning steps, PET batch x length
# and steps, repeats, token budget of our batches
# and steps, repeats, token budget of our batches, memory figure (facts per relation, token budget), whether
# P-Tuning runs on every model or the first only
PLANS = {"cpu": {"per_relation": (4, 1), "plain_facts": (24, 8), "ptuning_steps": 3, "pet": (2, 32, 2),
                 "repeats": 2, "budget": 1024, "memory": (25, 256), "ptuning_all": False},
         "cuda": {"per_relation": (100, 100), "plain_facts": (300, 300), "ptuning_steps": 20, "pet": (8, 256, 10),
                  "repeats": 3, "budget": 16384, "memory": (200, 1024), "ptuning_all": True}}


def _models(size: str) -> tuple[list[str], bool]:
    """LAMA models and whether the PET step runs, from ``--size`` (a preset or a comma list)."""
    names = SIZES.get(size) or [n.strip() for n in size.split(",") if n.strip()]
    pet = size in SIZES or PET_MODEL in names
    return [n for n in names if n != PET_MODEL], pet


def _model_figures(name: str, names: list[str], plan: dict, args, skip: set, device: torch.device, bf16: bool) -> dict:
    from bench.speed import lama_eval, train_steps
    from bench.speed.shapes import backbone_for, shape

    spec = shape(name)
    backbone = backbone_for(spec, device)
    entry: dict = {"params": sum(p.numel() for p in backbone.model.parameters()), "source": spec.source}
    base = spec.hidden <= 768
    per_relation = args.per_relation or plan["per_relation"][0 if base else 1]
    if "lama" not in skip:
        items, candidates = lama_eval.lama_items(backbone, per_relation)
        entry["lama"] = lama_eval.lama_figures(
            spec, backbone, items, candidates, budget=plan["budget"], runs_batch=args.runs_batch,
            ref_batch=args.ref_batch, repeats=plan["repeats"], tie=args.tie, bf16=bf16,
            plain_facts=plan["plain_facts"][0 if base else 1], eager_row=base or device.type == "cuda")
        if args.profile and name == names[0]:
            entry["profile"] = lama_eval.profile_ours(backbone, items, candidates, plan["budget"])
    if "memory" not in skip and name == names[0]:
        from bench.lama.data import relation_ids

        entry["memory"] = lama_eval.memory_by_relations(backbone, *plan["memory"], relation_ids())
    if "ptuning" not in skip and (plan["ptuning_all"] or name == names[0]):
        _, candidates = lama_eval.lama_items(backbone, 0, [args.relation])
        entry["ptuning"] = train_steps.ptuning_figures(backbone, candidates, args.relation, 8, plan["ptuning_steps"])
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default=os.environ.get("BENCH_SIZE") or "default",
                        help=f"preset ({', '.join(SIZES)}) or comma-separated shapes (bench.speed.shapes.SHAPES)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--per-relation", type=int, default=None, help="LAMA test facts per relation")
    parser.add_argument("--ref-batch", type=int, default=32, help="the reference loop's fixed batch per relation")
    parser.add_argument("--runs-batch", type=int, default=64, help="facts per batch of `bench.run` LAMA runs")
    parser.add_argument("--relation", default="P17", help="relation whose train facts the P-Tuning steps use")
    parser.add_argument("--tie", type=float, default=1e-4)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: lama, memory, ptuning, pet")
    parser.add_argument("--profile", action="store_true", help="also print where our LAMA evaluation spends its time")
    parser.add_argument("--json", type=Path, default=None, help="also write every number to this file")
    args = parser.parse_args(argv)
    from bench.speed import train_steps
    from bench.speed.report import table
    from bench.speed.shapes import shape

    started = time.perf_counter()
    release_freed_memory_at_once()
    device = pick_device(args.device)
    plan = PLANS["cuda" if device.type == "cuda" else "cpu"]
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # TF32 is its own row
    skip = set(filter(None, args.skip.split(",")))
    names, pet = _models(args.size)
    peaks = {"fp32": matmul_peak(device, torch.float32), "bf16": matmul_peak(device, torch.bfloat16)}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        peaks["tf32"] = matmul_peak(device, torch.float32)
        torch.backends.cuda.matmul.allow_tf32 = False
    bf16 = device.type == "cuda" or peaks["bf16"] > peaks["fp32"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result: dict = {"machine": machine_line(device), "load_avg_1min": load, "device": device.type, "peaks": peaks,
                    "bf16_used": bf16, "plan": plan, "models": {}}
    for name in names:
        try:
            result["models"][name] = _model_figures(name, names, plan, args, skip, device, bf16)
        except Exception as err:  # keep the other models' figures; the table says what failed
            result["models"][name] = {"error": f"{type(err).__name__}: {err}"}
            traceback.print_exc()
    if pet and "pet" not in skip:
        batch, length, steps = plan["pet"]
        try:
            result["pet"] = {"model": PET_MODEL, "source": shape(PET_MODEL).source,
                             **train_steps.pet_figures(shape(PET_MODEL), device, batch, length, steps, bf16)}
        except Exception as err:
            result["pet_error"] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
    result["wall_s"] = time.perf_counter() - started
    print(table(result))
    if args.json:
        from bench.io_utils import atomic_write_json

        atomic_write_json(args.json, result)
    bad = [name for name, entry in result["models"].items() if "error" in entry]
    bad += [name for name, entry in result["models"].items() if "lama" in entry
           and (entry["lama"]["rows"]["reference"]["mismatches"]
                or entry["lama"]["rows"].get("one_fact_loop", {}).get("mismatches")
                or not entry["lama"]["rows"]["ours_fixed_batch"]["identical"]
                or not entry["lama"]["rows"].get("ours_eager_attention", {"identical": True})["identical"])]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
