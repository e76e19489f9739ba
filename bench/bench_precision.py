"""How many weights a few fine-tuning steps change, per precision recipe (run it on the GPU you use).

``python -m bench.bench_precision --device cuda --model tiny-albert`` trains PET at the mask for
``--steps`` AdamW steps at ``--lr`` from one initial state, three ways, and prints the share of
weights each changed and how far each update is from the fp32 one:

- ``fp32``: fp32 weights, no autocast (the reference);
- ``autocast``: fp32 master weights, forward under bf16 autocast (``bench.train.fit``'s recipe);
- ``bf16_storage``: weights stored and updated in bf16 (the suite's GPU path before
  ``bench.precision``): most updates of ~lr size round away.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import torch
import torch.nn.functional as F

from bench.backbones.scoring import pad_batch, target_logits
from bench.precision import Precision
from bench.train import fit

TEXTS = ["paris is the capital of [MASK] .", "the cat sat on the [MASK] .", "water boils at [MASK] degrees .",
         "berlin is in [MASK] .", "he plays the [MASK] well .", "she was born in [MASK] ."]
GOLDS = ["france", "mat", "hundred", "germany", "piano", "london"]
MODES = ("fp32", "autocast", "bf16_storage")


class MaskTask:
    """Cross-entropy of a gold word at the mask (masked LMs); every evaluation improves, so ``fit``
    keeps the final state."""

    def __init__(self, tokenizer, device: torch.device | None = None, keep: list[int] | None = None) -> None:
        self.tok, self.device, self.calls, self.keep = tokenizer, device or torch.device("cpu"), 0, keep

    def train_batches(self, batch_size: int, generator=None) -> list:
        out = []
        for i in range(0, len(TEXTS), batch_size):
            ids = [self.tok(t.replace("[MASK]", self.tok.mask_token))["input_ids"] for t in TEXTS[i : i + batch_size]]
            batch = pad_batch(ids, [[s.index(self.tok.mask_token_id)] for s in ids], self.tok.pad_token_id)
            batch = batch.to(self.device)
            batch.labels = torch.tensor([self.tok.convert_tokens_to_ids(self.tok.tokenize(g))[0]
                                         for g in GOLDS[i : i + batch_size]], device=self.device)
            out.append(batch)
        return out if self.keep is None else [out[i] for i in self.keep]

    def loss(self, scores: torch.Tensor, batch) -> torch.Tensor:
        return F.cross_entropy(scores.float(), batch.labels)

    def evaluate(self, split: str, scorer) -> tuple[dict, float]:
        self.calls += 1
        return {}, float(self.calls)


def trainer_cfg(lr: float, steps: int) -> dict:
    return {"lr": lr, "optimizer": "adamw", "weight_decay": 0.0, "schedule": "constant", "batch_size": 2,
            "max_epochs": 1, "max_steps": steps, "grad_clip": None}


def update(backbone, mode: str, lr: float = 1e-5, steps: int = 3, compute: torch.dtype = torch.bfloat16,
           keep: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Per parameter, what ``steps`` PET steps changed (weights as stored after minus before);
    ``keep`` trains on those batches only (e.g. the ones an fp16 run did not skip)."""
    from bench.methods.pet import PatternTuning

    backbone = dataclasses.replace(backbone, model=copy.deepcopy(backbone.model), precision=None)
    if mode == "bf16_storage":
        backbone.model.to(torch.bfloat16)
    before = {n: p.detach().float().clone() for n, p in backbone.model.named_parameters()}
    method = PatternTuning()
    method.setup(backbone)
    torch.manual_seed(0)
    task = MaskTask(backbone.tokenizer, backbone.device, keep)
    if mode == "bf16_storage":
        optimizer = torch.optim.AdamW(backbone.model.parameters(), lr=lr, weight_decay=0.0)
        method.train_mode()
        for batch in task.train_batches(2)[:steps]:
            loss = task.loss(target_logits(backbone.model, batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        policy = Precision(backbone.device.type, compute if mode == "autocast" else torch.float32, torch.float32,
                           tunes_backbone=True, trains=True)
        fit(method, task, trainer_cfg(lr, steps), "dev", seed=0, precision=policy)
    return {n: p.detach().float() - before[n] for n, p in backbone.model.named_parameters()}


def changed_share(deltas: dict[str, torch.Tensor]) -> float:
    return sum(int((d != 0).sum()) for d in deltas.values()) / sum(d.numel() for d in deltas.values())


def distance(deltas: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> float:
    """||update - reference update|| / ||reference update|| over all weights."""
    got, ref = (torch.cat([d.flatten() for d in x.values()]) for x in (deltas, reference))
    return float((got - ref).norm() / ref.norm())


def main(argv: list[str] | None = None) -> None:
    from bench.backbones import load_backbone, load_model_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-albert")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--compute", default="bf16", choices=("bf16", "fp16"))
    args = parser.parse_args(argv)
    backbone = load_backbone(load_model_config(args.model), device=args.device, dtype="fp32")
    compute = torch.bfloat16 if args.compute == "bf16" else torch.float16
    deltas = {mode: update(backbone, mode, args.lr, args.steps, compute) for mode in MODES}
    for mode, d in deltas.items():
        print(f"{mode:>13}: {changed_share(d):7.3%} of weights changed, "
              f"{sum(bool(x.any()) for x in d.values())}/{len(d)} tensors, "
              f"distance to the fp32 update {distance(d, deltas['fp32']):.4f}")


if __name__ == "__main__":
    main()
