"""Weight-decay rules on top of a method's parameter groups (``trainer.no_decay``, ``trainer.method_weight_decay``).

PET and PT-Fewshot (``pet/wrapper.py``) both give the tuned backbone AdamW weight decay except for
parameters whose *name contains* ``bias`` or ``LayerNorm.weight`` (a substring test on
``named_parameters()``; ALBERT's ``full_layer_layer_norm.weight`` does not match it and is decayed
there too, which is kept here). PT-Fewshot trains its prompt encoder with a second AdamW without
weight decay: ``method_weight_decay: 0.0``. One AdamW with per-group learning rates and decay is
the same update as two optimizers with a shared schedule (Adam's state is per parameter).
"""

from __future__ import annotations

from collections.abc import Mapping


def decay_rules(method, groups: list[dict], trainer_cfg: Mapping) -> list[dict]:
    """``groups`` with the backbone group split by ``no_decay`` and the method group's decay set."""
    no_decay = list(trainer_cfg.get("no_decay") or [])
    method_wd = trainer_cfg.get("method_weight_decay")
    wd = float(trainer_cfg.get("weight_decay", 0.0))
    out: list[dict] = []
    for group in groups:
        if group.get("name") == "method" and method_wd is not None:
            out.append({**group, "weight_decay": float(method_wd)})
        elif group.get("name") == "backbone" and no_decay:
            names = {id(p): n for n, p in method.backbone.model.named_parameters()}
            plain = [p for p in group["params"] if not any(nd in names.get(id(p), "") for nd in no_decay)]
            exempt = [p for p in group["params"] if any(nd in names.get(id(p), "") for nd in no_decay)]
            out += [g for g in ({**group, "params": plain, "weight_decay": wd},
                                {**group, "params": exempt, "weight_decay": 0.0, "name": "backbone_no_decay"})
                    if g["params"]]
        else:
            out.append(group)
    return out
