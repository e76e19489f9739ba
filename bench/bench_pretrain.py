"""``make bench-pretrain``: mini-model pretraining step time, ours against a plain baseline.

Both variants train the same model (a conf/pretrain recipe's size and vocabulary) on the same
random batches with the same masked / next-token positions, in the same process:
- plain: fp32, the full model forward (output layer over every position), loss at the selected positions;
- ours: only the selected positions go through the output layer (``bench.pretrain.model.losses``),
  under bf16 autocast when the device supports it (as ``bench.pretrain.train`` decides).
Also reported: each lever alone, so the ratio can be traced to its cause.

``python -m bench.bench_pretrain --recipe mini-bert --steps 10``
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from bench.pretrain.build import load_recipe
from bench.pretrain.data import LossBatch
from bench.pretrain.model import losses, make_model
from bench.pretrain.train import bf16_supported


class _VocabOnly:
    """What make_model needs from a tokenizer: its size and special ids."""

    def __init__(self, size: int) -> None:
        self.size, self.pad_token_id, self.eos_token_id = size, 0, 1

    def __len__(self) -> int:
        return self.size


def _batch(vocab: int, batch: int, length: int, rate: float, generator: torch.Generator) -> LossBatch:
    ids = torch.randint(5, vocab, (batch, length), generator=generator)
    selected = torch.rand(batch, length, generator=generator) < rate
    rows, cols = selected.nonzero(as_tuple=True)
    return LossBatch(ids, torch.ones_like(ids), rows, cols, ids[rows, cols], torch.zeros(len(rows), dtype=torch.bool))


def _plain_loss(model: torch.nn.Module, batch: LossBatch) -> torch.Tensor:
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    return F.cross_entropy(logits[batch.rows, batch.cols].float(), batch.targets)


def _time(arch: str, spec: dict, vocab: int, batches: list[LossBatch], selected_only: bool, bf16: bool) -> float:
    torch.manual_seed(0)
    model = make_model(arch, spec, _VocabOnly(vocab)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    timings = []
    for index, batch in enumerate(batches):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = losses(model, batch)[0] if selected_only else _plain_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= 2:  # the first steps warm up the allocator and kernels
            timings.append(time.perf_counter() - started)
    return sum(timings) / len(timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pretrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="mini-bert", help="conf/pretrain/<recipe>.yaml (model size, batch, length)")
    parser.add_argument("--vocab", type=int, default=27926, help="vocabulary size (mini-bert's is 27,926)")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe)
    torch.set_num_threads(int(recipe["train"].get("threads", 2)))
    arch, spec = recipe["arch"], recipe["model"]
    batch_size, length = int(recipe["train"]["batch_size"]), int(recipe["corpus"]["max_length"])
    objective = recipe["objective"]
    rate = float(objective.get("random_rate", 0.15)) + (0.05 if arch == "bert" else 0.1)  # + object tokens
    generator = torch.Generator().manual_seed(0)
    batches = [_batch(args.vocab, batch_size, length, rate, generator) for _ in range(args.steps + 2)]
    native = bf16_supported()
    print(f"recipe {args.recipe}: {arch}, {spec['num_layers']} layers x {spec['hidden_size']}, vocab {args.vocab:,}, "
          f"batch {batch_size} x {length} tokens, {rate:.0%} of positions scored; {torch.get_num_threads()} threads; "
          f"native CPU bf16: {native}")
    variants = [("plain: fp32, full output layer", False, False),
                ("selected positions only, fp32", True, False),
                ("full output layer, bf16 autocast", False, native)]
    variants.append(("ours: selected positions + bf16 autocast" if native else "ours: selected positions (no native bf16)",
                     True, native))
    base = None
    for label, selected_only, bf16 in variants:
        seconds = _time(arch, spec, args.vocab, batches, selected_only, bf16)
        base = base or seconds
        print(f"  {label:45s} {1000 * seconds:8.1f} ms/step  {batch_size * length / seconds:9.0f} tokens/s  "
              f"x{base / seconds:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
