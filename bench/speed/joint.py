"""P-Tuning's LAMA study trained jointly (bench.joint) vs one relation after another, same model, one process.

Both sides are :func:`bench.lama.runner.run_lama` with the P-Tuning LAMA recipe (the reference loop,
bi-LSTM encoder, frozen backbone with dropout on, Adam, batch 8) on every relation, a fixed number of
epochs (no early stopping) and at most ``--train-facts`` / ``--eval-facts`` facts per relation;
``trainer.joint=off`` then ``auto``. Printed: the wall time of each study, the speed-up, and whether
the two records' metrics are identical (they must be on CPU; exit 1 otherwise).

``python -m bench.speed.joint --model tiny-bert`` (local models, conf/model/<name>.yaml) or
``--shape bert-base-cased`` (the paper's shape with random weights, bench.speed.shapes; for GPUs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

from bench.device import pick_device
from bench.speed.measure import machine_line, sync

GPU_SHAPES = "bert-base-cased,roberta-large,gpt2-medium"  # the GPU row (random weights), on CUDA only


def _cfg(name: str, vocab_key: str, results: str, args, mode: str) -> dict:
    return {"task": {"name": "lama", "variant": "lama34k", "relations": "all", "eval_splits": ["dev", "test"],
                     "selection_split": "dev", "report_split": "test", "batch_size": 64,
                     "limit_per_relation": args.eval_facts, "train_limit_per_relation": args.train_facts,
                     "protocol": "reference"},
            "model": {"name": name, "lama_vocab_key": vocab_key}, "method": {"name": "ptuning"}, "seed": 34,
            "tag": "speed", "paths": {"results_dir": results},
            "template": {"name": "ptuning_lama", "kind": "ptuning", "shape": {"mlm": [3, 3, 3], "clm": [3, 3, 0]}},
            "trainer": {"optimizer": "adam", "lr": 1e-5, "weight_decay": 5e-4, "schedule": "exponential",
                        "gamma": 0.98, "batch_size": 8, "max_epochs": args.epochs, "early_stopping_patience": None,
                        "grad_clip": None, "joint": mode, "joint_group_size": args.group_size}}


def _backbone(name: str, shape: bool, device: torch.device):
    from bench.backbones import load_backbone, load_model_config

    vocab_key = load_model_config(name)["lama_vocab_key"]
    if shape:
        from bench.speed.shapes import backbone_for
        from bench.speed.shapes import shape as shape_of

        return backbone_for(shape_of(name), device), vocab_key
    return load_backbone(load_model_config(name), device=str(device), dtype="fp32"), vocab_key


def study_times(name: str, args, device: torch.device, shape: bool = False) -> dict:
    """Seconds for the whole study one relation after another and jointly; whether the metrics agree."""
    from bench.lama.runner import run_lama
    from bench.methods.ptuning import PTuning

    backbone, vocab_key = _backbone(name, shape, device)
    out: dict = {"model": name + (" (random weights)" if shape else "")}
    metrics = {}
    for mode in ("off", "auto"):
        with tempfile.TemporaryDirectory() as results:
            cfg = _cfg(name, vocab_key, results, args, mode)
            sync(device)
            start, cpu = time.perf_counter(), time.process_time()
            payload = run_lama(cfg, backbone, PTuning(encoder="lstm", backbone_dropout=True))
            sync(device)
            out[mode] = time.perf_counter() - start
            out[f"{mode}_cpu"] = time.process_time() - cpu  # CPU seconds: less sensitive to a shared machine
        metrics[mode] = payload["metrics"]
        out["relations"] = len(payload["extra"]["training"])
        out["steps"] = sum(t["steps"] for t in payload["extra"]["training"].values())
    out["speedup"] = out["off"] / out["auto"]
    out["identical"] = metrics["off"] == metrics["auto"]
    out["p_at_1"] = metrics["auto"]["test"]["overall"].get("p_at_1") if metrics["auto"].get("test") else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-bert", help="comma list of conf/model names with local weights")
    parser.add_argument("--shape", default="", help=f"comma list of paper shapes with random weights (CUDA default: {GPU_SHAPES})")
    parser.add_argument("--epochs", type=int, default=2, help="fixed epochs per relation (no early stopping)")
    parser.add_argument("--train-facts", type=int, default=64, help="train facts per relation (null-free cap)")
    parser.add_argument("--eval-facts", type=int, default=32, help="dev / test facts per relation")
    parser.add_argument("--group-size", type=int, default=None, help="relations per joint step (default: all)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    print(machine_line(device))
    print(f"P-Tuning LAMA study, every relation, {args.epochs} epochs, <= {args.train_facts} train / "
          f"{args.eval_facts} eval facts per relation, batch 8, fp32: one after another vs jointly (bench.joint)")
    failed = False
    shapes = args.shape or (GPU_SHAPES if device.type == "cuda" else "")
    rows = [(n, False) for n in args.model.split(",") if n] + [(n, True) for n in shapes.split(",") if n]
    for name, shape in rows:
        row = study_times(name, args, device, shape)
        same = "identical metrics" if row["identical"] else "METRICS DIFFER"
        failed |= not row["identical"] and device.type == "cpu"
        print(f"  {row['model']:<32} {row['relations']} relations, {row['steps']} steps: separate {row['off']:.1f} s, "
              f"joint {row['auto']:.1f} s, {row['speedup']:.1f}x (process CPU time {row['off_cpu']:.1f} s vs "
              f"{row['auto_cpu']:.1f} s, {row['off_cpu'] / row['auto_cpu']:.1f}x); {same}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
