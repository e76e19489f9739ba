"""Run inside timoschick/pet's environment (Python 3.7, transformers 3.0.2, torch 1.5.0): its optimizer and
schedule (``transformers.AdamW`` + ``get_linear_schedule_with_warmup``, as ``pet/wrapper.py`` builds them) on fixed
parameters and gradients, as JSON.

Imports only torch and transformers, never ``bench``. Usage: ``python fewglue_optim_ref.py JOB.json``. The job
gives the parameter groups (initial values, weight decay), the gradients of every step, lr, eps, warmup and total
steps; the output holds every parameter after each step and the lr each step ran with.
"""

import json
import sys

import torch
from transformers import AdamW, get_linear_schedule_with_warmup


def main():
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    params = [torch.nn.Parameter(torch.tensor(g["init"])) for g in job["groups"]]
    groups = [{"params": [p], "weight_decay": g["weight_decay"]} for p, g in zip(params, job["groups"])]  # noqa: B905
    optimizer = AdamW(groups, lr=job["lr"], eps=job["eps"])
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=job["warmup"],
                                                num_training_steps=job["total"])
    out = {"params": [], "lrs": []}
    for grads in job["grads"]:
        for p, g in zip(params, grads):  # noqa: B905
            p.grad = torch.tensor(g)
        out["lrs"].append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        out["params"].append([p.detach().tolist() for p in params])
    with open(job["out"], "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
