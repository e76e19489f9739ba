"""P-Tuning's LAMA study trained jointly (bench.joint) vs one relation after another, same model, one process.

Both sides are :func:`bench.lama.runner.run_lama` with the P-Tuning LAMA recipe (the reference loop,
bi-LSTM encoder, frozen backbone with dropout on, Adam, batch 8) on every relation, a fixed number of
epochs (no early stopping) and at most ``--train-facts`` / ``--eval-facts`` facts per relation;
``trainer.joint=off`` then ``auto``, ``--repeats`` times interleaved (off, auto, off, auto, ...: a busy
moment of a shared machine hits both sides alike). Printed per model: wall and process CPU seconds of
each side (median and best of the repeats), the speed-ups, the load average, and whether the two
records' metrics are identical (they must be on CPU; exit 1 otherwise).

On CUDA the joint row also gives the fraction of the GPU's fp32 matmul peak the joint step reaches:
the FLOPs of every joint step's forward and backward pass counted from its shapes (below, from
:mod:`bench.speed.shapes`), divided by the step's time (CUDA events around each step's forward and
backward, read at the end: no synchronisation in the loop) and by the peak (measured here with a large
fp32 matmul, TF32 off as in the runs; and the datasheet value where the device is in ``DATASHEET_FP32``).
On CPU that row is skipped (said so).

``python -m bench.speed.joint --model tiny-bert`` (local models, conf/model/<name>.yaml) or
``--shape mini-bert`` (a shape with random weights, bench.speed.shapes: mini-bert on CPU, the paper
shapes on GPUs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

from bench.device import pick_device
from bench.speed.measure import machine_line, matmul_peak, sync

GPU_SHAPES = "bert-base-cased,roberta-large,gpt2-medium"  # the GPU row (random weights), on CUDA only
CPU_SHAPES = "mini-bert"  # the CPU row: mini-bert's shape (random weights; speed does not depend on them)
# dense fp32 (no tensor cores) peaks from NVIDIA's datasheets, TFLOP/s; not checked in this suite: marked as such
DATASHEET_FP32 = {"H200": 67.0, "H100 PCIe": 51.0, "H100": 67.0, "A100": 19.5, "L40S": 91.6, "L4": 30.3,
                  "A10G": 31.2, "V100": 15.7}


def _cfg(name: str, vocab_key: str, results: str, args, mode: str) -> dict:
    return {"task": {"name": "lama", "variant": "lama34k", "relations": "all", "eval_splits": ["dev", "test"],
                     "selection_split": "dev", "report_split": "test", "batch_size": 64,
                     "limit_per_relation": args.eval_facts, "train_limit_per_relation": args.train_facts,
                     "protocol": "reference"},
            "model": {"name": name, "lama_vocab_key": vocab_key}, "method": {"name": "ptuning"}, "seed": 34,
            "tag": "speed", "paths": {"results_dir": results},
            "template": {"name": "ptuning_lama", "kind": "ptuning", "shape": {"mlm": [3, 3, 3], "clm": [3, 3, 0]}},
            "trainer": {"optimizer": "adam", "lr": args.lr, "weight_decay": 5e-4, "schedule": "exponential",
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


def step_flops(spec, rows: int, width: int, targets: int, causal: bool) -> int:
    """FLOPs of one forward and backward pass of a joint step through the frozen backbone, from its shapes.

    Forward: the weight matmuls of every padded token (``rows x width``), attention's QK^T and AV over
    the padded width, the LM head at the ``targets`` scored positions (full vocabulary). Backward of a
    frozen backbone: input gradients only, so one matmul per weight matmul and per head matmul (no
    weight gradients) and two per attention product (both operands are activations): 2 M + 3 A + 2 H.
    The prompt encoders, layer norms, softmax and the optimizer step are left out (small next to these).
    """
    from bench.speed.shapes import attention_flops, head_flops_per_target, matmul_flops_per_token

    body = rows * width * matmul_flops_per_token(spec)
    attention = attention_flops(spec, [width] * rows, causal)
    head = targets * head_flops_per_target(spec)
    return 2 * body + 3 * attention + 2 * head


class CudaStepTimer:
    """A bench.joint step observer: CUDA events around each joint step, read once at the end."""

    def __init__(self) -> None:
        self.steps: list[tuple[torch.cuda.Event, torch.cuda.Event, list[tuple[int, int, int]]]] = []
        self._start: torch.cuda.Event | None = None

    def begin(self) -> None:
        self._start = torch.cuda.Event(enable_timing=True)
        self._start.record()

    def end(self, shapes: list[tuple[int, int, int]]) -> None:
        stop = torch.cuda.Event(enable_timing=True)
        stop.record()
        self.steps.append((self._start, stop, shapes))

    def flops_and_seconds(self, spec, causal: bool) -> tuple[int, float]:
        torch.cuda.synchronize()
        flops = sum(step_flops(spec, rows, width, targets, causal)
                    for _, _, shapes in self.steps for rows, width, targets in shapes)
        seconds = sum(a.elapsed_time(b) for a, b, *_ in self.steps) / 1000
        return flops, seconds


def datasheet_peak(device: torch.device) -> tuple[str, float] | None:
    """(matched name, fp32 FLOP/s) from DATASHEET_FP32 for this CUDA device, or None."""
    name = torch.cuda.get_device_properties(device).name
    for key in sorted(DATASHEET_FP32, key=len, reverse=True):  # "H100 PCIe" before "H100"
        if key in name:
            return key, DATASHEET_FP32[key] * 1e12
    return None


def study_times(name: str, args, device: torch.device, shape: bool = False) -> dict:
    """Seconds (wall, process CPU) for the whole study one relation after another and jointly, interleaved
    ``args.repeats`` times; whether the metrics agree; on CUDA the joint step's share of the matmul peak."""
    import bench.joint
    from bench.lama.runner import run_lama
    from bench.methods.ptuning import PTuning

    backbone, vocab_key = _backbone(name, shape, device)
    out: dict = {"model": name + (" (random weights)" if shape else ""), "load_before": os.getloadavg()[0]}
    metrics: dict = {}
    times: dict[str, list[float]] = {"off": [], "auto": [], "off_cpu": [], "auto_cpu": []}
    timer = CudaStepTimer() if device.type == "cuda" and shape else None
    for repeat in range(args.repeats):
        for mode in ("off", "auto"):
            observe = timer is not None and mode == "auto" and repeat == args.repeats - 1
            if observe:
                bench.joint.STEP_OBSERVERS.append(timer)
            try:
                with tempfile.TemporaryDirectory() as results:
                    cfg = _cfg(name, vocab_key, results, args, mode)
                    sync(device)
                    start, cpu = time.perf_counter(), time.process_time()
                    payload = run_lama(cfg, backbone, PTuning(encoder="lstm", backbone_dropout=True))
                    sync(device)
                    times[mode].append(time.perf_counter() - start)
                    times[f"{mode}_cpu"].append(time.process_time() - cpu)  # less sensitive to a shared machine
            finally:
                if observe:
                    bench.joint.STEP_OBSERVERS.remove(timer)
            if metrics.get(mode) not in (None, payload["metrics"]):
                out["repeat_differs"] = True
            metrics[mode] = payload["metrics"]
            out["relations"] = len(payload["extra"]["training"])
            out["steps"] = sum(t["steps"] for t in payload["extra"]["training"].values())
            print(f"    repeat {repeat + 1}/{args.repeats} {mode:>4}: {times[mode][-1]:.1f} s wall, "
                  f"{times[f'{mode}_cpu'][-1]:.1f} s CPU, load {os.getloadavg()[0]:.1f}", flush=True)
    out["load_after"] = os.getloadavg()[0]
    for key, values in times.items():
        out[key], out[f"{key}_best"] = statistics.median(values), min(values)
    out["speedup"], out["speedup_cpu"] = out["off"] / out["auto"], out["off_cpu"] / out["auto_cpu"]
    out["speedup_best"] = out["off_best"] / out["auto_best"]
    out["identical"] = metrics["off"] == metrics["auto"]
    out["p_at_1"] = metrics["auto"]["test"]["overall"].get("p_at_1") if metrics["auto"].get("test") else None
    if timer is not None and timer.steps:
        from bench.speed.shapes import shape as shape_of

        spec = shape_of(name)
        flops, seconds = timer.flops_and_seconds(spec, causal=spec.family == "clm")
        torch.backends.cuda.matmul.allow_tf32 = False  # the runs are fp32 without TF32 (torch's default)
        out["gpu"] = {"steps": len(timer.steps), "flops": flops, "seconds": seconds, "flop_s": flops / seconds,
                      "measured_peak": matmul_peak(device, torch.float32), "datasheet": datasheet_peak(device)}
    return out


def _gpu_line(gpu: dict) -> str:
    line = (f"      joint step (forward + backward, {gpu['steps']} steps): {gpu['flop_s'] / 1e12:.2f} TFLOP/s = "
            f"{gpu['flop_s'] / gpu['measured_peak']:.1%} of the measured fp32 matmul peak "
            f"({gpu['measured_peak'] / 1e12:.1f} TFLOP/s)")
    if gpu["datasheet"]:
        key, peak = gpu["datasheet"]
        line += f", {gpu['flop_s'] / peak:.1%} of the {key} datasheet fp32 peak ({peak / 1e12:.0f} TFLOP/s, unchecked)"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-bert", help="comma list of conf/model names with local weights "
                        "('' for none)")
    parser.add_argument("--shape", default=None, help="comma list of shapes with random weights (bench.speed.shapes; "
                        f"default: {CPU_SHAPES} on CPU, {GPU_SHAPES} on CUDA; '' for none)")
    parser.add_argument("--epochs", type=int, default=2, help="fixed epochs per relation (no early stopping)")
    parser.add_argument("--train-facts", type=int, default=64, help="train facts per relation (null-free cap)")
    parser.add_argument("--eval-facts", type=int, default=32, help="dev / test facts per relation")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's lr (conf/debug/mini.yaml's; reference: 1e-5)")
    parser.add_argument("--group-size", type=int, default=None, help="relations per joint step (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="off/auto pairs, interleaved (median and best shown)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(machine_line(device))
    print(f"P-Tuning LAMA study, every relation, {args.epochs} epochs, <= {args.train_facts} train / "
          f"{args.eval_facts} eval facts per relation, batch 8, Adam lr {args.lr:g}, fp32: one after another vs "
          f"jointly (bench.joint), {args.repeats} interleaved repeat(s)")
    if device.type != "cuda":
        print("  (fraction of the GPU's matmul peak: skipped, not on CUDA)")
    failed = False
    shapes = args.shape if args.shape is not None else (GPU_SHAPES if device.type == "cuda" else CPU_SHAPES)
    rows = [(n, False) for n in args.model.split(",") if n] + [(n, True) for n in shapes.split(",") if n]
    for name, shape in rows:
        row = study_times(name, args, device, shape)
        same = "identical metrics" if row["identical"] and not row.get("repeat_differs") else "METRICS DIFFER"
        failed |= same != "identical metrics" and device.type == "cpu"
        print(f"  {row['model']:<32} {row['relations']} relations, {row['steps']} steps: separate {row['off']:.1f} s, "
              f"joint {row['auto']:.1f} s, {row['speedup']:.2f}x (best {row['off_best']:.1f} vs {row['auto_best']:.1f} s, "
              f"{row['speedup_best']:.2f}x; process CPU time {row['off_cpu']:.1f} s vs {row['auto_cpu']:.1f} s, "
              f"{row['speedup_cpu']:.2f}x); load average {row['load_before']:.1f} -> {row['load_after']:.1f}; {same}",
              flush=True)
        if "gpu" in row:
            print(_gpu_line(row["gpu"]), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
