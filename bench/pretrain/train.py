"""The pretraining loop: AdamW, warmup + linear decay, bf16 autocast on CPUs that support it.

Deterministic given the recipe's seed on one machine and thread count: weights come from
``torch.manual_seed``; data order and masking draw from their own seeded generator.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.pretrain.data import Encoded, batches, clm_batch, mlm_batch
from bench.pretrain.model import losses, make_model


@dataclass
class TrainResult:
    model: torch.nn.Module
    log: list[dict[str, Any]] = field(default_factory=list)
    heldout: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0
    bf16: bool = False


def bf16_supported() -> bool:
    """Whether CPU bf16 autocast runs on native instructions (AVX512-BF16 / AMX) here."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _use_bf16(setting: Any, device: torch.device) -> bool:
    if setting in (True, "true", "on"):
        return True
    if setting in (False, "false", "off", None):
        return False
    return device.type == "cuda" or (device.type == "cpu" and bf16_supported())


def _make_batch(arch: str, items: Sequence[Encoded], tokenizer, objective: Mapping[str, Any],
                generator: torch.Generator):
    if arch == "bert":
        return mlm_batch(items, tokenizer, float(objective["salient_rate"]), float(objective["random_rate"]), generator)
    return clm_batch(items, tokenizer.eos_token_id, float(objective["random_rate"]), generator)


def _optimizer(model: torch.nn.Module, spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else decay).append(param)
    groups = [{"params": decay, "weight_decay": float(spec.get("weight_decay", 0.01))},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=float(spec["lr"]), betas=(0.9, 0.98), eps=1e-6)


def _schedule(step: int, total: int, warmup: int, floor: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return floor + (1.0 - floor) * max(0.0, (total - step) / max(1, total - warmup))


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, arch: str, items: Sequence[Encoded], tokenizer,
                 batch_size: int, bf16: bool, seed: int = 1234) -> dict[str, float]:
    """Loss on held-out sentences with fixed masks: MLM (object masked + 15% random) or full next-token."""
    if not items:
        return {}
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    objective = {"salient_rate": 1.0, "random_rate": 0.15 if arch == "bert" else 1.0}
    totals = {"loss": [0.0, 0], "salient": [0.0, 0], "other": [0.0, 0]}
    for begin in range(0, len(items), batch_size):
        batch = _make_batch(arch, items[begin:begin + batch_size], tokenizer, objective, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, parts = losses(model, batch)
        counts = {"salient": int(batch.salient.sum()), "other": int((~batch.salient).sum())}
        for key, count in counts.items():
            if key in parts:
                totals[key][0] += parts[key] * count
                totals[key][1] += count
                totals["loss"][0] += parts[key] * count
                totals["loss"][1] += count
    model.train()
    return {key: round(total / count, 4) for key, (total, count) in totals.items() if count}


def pretrain(arch: str, recipe: Mapping[str, Any], tokenizer, train_items: Sequence[Encoded],
             heldout_items: Sequence[Encoded], progress: bool = True) -> TrainResult:
    """Train a fresh model of `recipe['model']` on `train_items` with `recipe['objective']` and `recipe['train']`."""
    spec = recipe["train"]
    torch.set_num_threads(int(spec.get("threads", 2)))
    seed = int(recipe["seed"])
    torch.manual_seed(seed)
    model = make_model(arch, recipe["model"], tokenizer)
    model.train()
    bf16 = _use_bf16(spec.get("bf16", "auto"), torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed + 1)
    batch_size = int(spec["batch_size"])
    per_epoch = math.ceil(len(train_items) / batch_size)
    total = int(spec.get("steps") or math.ceil(float(spec["epochs"]) * per_epoch))
    warmup = max(1, int(float(spec.get("warmup", 0.05)) * total))
    optimizer = _optimizer(model, spec)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _schedule(s, total, warmup, float(spec.get("final_lr_ratio", 0.0))))
    log_every, clip = int(spec.get("log_every", 50)), float(spec.get("grad_clip", 1.0))
    result = TrainResult(model, bf16=bf16)
    window: dict[str, list[float]] = {"loss": [], "salient": [], "other": []}
    started = time.perf_counter()
    tokens, step = 0, 0
    order: list[list[int]] = []
    bar = tqdm(total=total, desc=f"pretrain {arch}", unit="step", disable=not progress, mininterval=5.0)
    while step < total:
        if not order:
            order = batches(train_items, batch_size, generator)
        items = [train_items[i] for i in order.pop()]
        batch = _make_batch(arch, items, tokenizer, recipe["objective"], generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, parts = losses(model, batch)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += int(batch.attention_mask.sum())
        window["loss"].append(loss.item())
        for key, value in parts.items():
            window[key].append(value)
        if step % log_every == 0 or step == total:
            elapsed = time.perf_counter() - started
            entry = {"step": step, "epoch": round(step / per_epoch, 3), "lr": scheduler.get_last_lr()[0],
                     "seconds": round(elapsed, 1), "tokens_per_s": round(tokens / elapsed)}
            entry.update({k: round(sum(v) / len(v), 4) for k, v in window.items() if v})
            result.log.append(entry)
            bar.set_postfix(loss=entry["loss"], obj=entry.get("salient"), refresh=False)
            window = {k: [] for k in window}
        bar.update(1)
    bar.close()
    result.seconds = time.perf_counter() - started
    result.steps = step
    model.eval()
    result.heldout = heldout_loss(model, arch, heldout_items, tokenizer, 2 * batch_size, bf16)
    return result
