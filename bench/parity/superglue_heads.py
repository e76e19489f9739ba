"""Fixed-weight cases for P-tuning-v2's fine-tuning and ``--prompt`` models beside the suite's methods.

The fine-tuning family: the reference's ``get_model`` without ``--prefix``/``--prompt`` builds
transformers' ``AutoModelForSequenceClassification`` (BERT: pooler, dropout, linear; RoBERTa:
``RobertaClassificationHead``) or, for COPA, ``AutoModelForMultipleChoice`` (pooler, dropout, a
one-logit linear) with the backbone frozen (``get_trainer.py``: ``fix_bert=True``); the suite's
``finetune`` with ``head: auto_model, init: reference``. The Prompt Tuning family: the reference's
``Bert/RobertaPromptFor{SequenceClassification,MultipleChoice}``; the suite's ``prompt_classifier``.
Both sides get the tiny backbone, the same head / pooler / prompt weights (the sine pattern of
:func:`bench.parity.superglue_models.pattern`) and the same examples; the golden file
(``heads.json``) keeps the reference's logits, loss and its own initialisation statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bench.parity.superglue_models import CaseNames, pattern

FAMILIES = {"finetune": "sgv2_finetune_{task}", "prompt": "sgv2_prompt_tuning_{task}"}
# the suite's method per family: the presets' own (they set these since the presets switched; ptv2 inputs, length 128)
OVERRIDES = {"finetune": ["method.component.head=auto_model", "method.component.init=reference"],
             "prompt": []}


@dataclass(frozen=True)
class HeadCase(CaseNames):
    name: str
    family: str  # finetune | prompt
    model: str  # tiny-bert | tiny-roberta
    task: str
    psl: int = 4  # --pre_seq_len (prompt family; the reference's default)
    n_examples: int = 4

    @property
    def preset(self) -> str:
        return FAMILIES[self.family].format(task=self.task)

    @property
    def overrides(self) -> list[str]:
        extra = [f"method.component.length={self.psl}"] if self.family == "prompt" else []
        return [*OVERRIDES[self.family], *extra]


CASES = tuple(HeadCase(f"{family}_{task}_{arch}", family, f"tiny-{arch}", task)
              for family in ("finetune", "prompt") for task in ("rte", "boolq", "wic", "copa")
              for arch in ("bert", "roberta"))


def reference_name(case: HeadCase, suite_name: str) -> str:
    """The reference's parameter name for one of the suite's (own modules + pooler)."""
    group, rest = suite_name.split(".", 1)
    if group == "pooler":
        return f"{case.arch}.pooler.{rest}"
    if group == "prompt":
        return "prefix_encoder.weight"
    if case.family == "finetune" and case.arch == "roberta" and not case.multiple_choice:  # RobertaClassificationHead
        return "classifier." + rest.replace("classifier.", "out_proj.")
    return rest


def named_weights(method) -> dict[str, torch.nn.Parameter]:
    """Every weight of the method's head side (own modules + pooler), by the suite's name."""
    out = {f"{group}.{name}": p for group, module in method.own_modules().items()
           for name, p in module.named_parameters()}
    if method.pooler is not None:
        out.update({f"pooler.{name}": p for name, p in method.pooler.named_parameters()})
    return out


def suite_method(case: HeadCase, method, fixed: bool = True):
    """The preset's method on a copy of the backbone with the case's fixed weights; eval mode."""
    with torch.no_grad():
        if fixed:
            for salt, (name, param) in enumerate(sorted(named_weights(method).items())):
                param.copy_(pattern(param.shape, salt, 0.5 if name.startswith("prompt") else 0.2))
    method.eval_mode()
    return method


def reference_weights(case: HeadCase, method) -> dict[str, list]:
    return {reference_name(case, name): p.detach().tolist() for name, p in named_weights(method).items()}


def suite_outputs(task_obj, method, keys: list[str]) -> dict[str, Any]:
    """Logits (examples x options) and mean cross-entropy loss on the case's val examples, in the keys' order."""
    wanted = set(keys)
    items = [task_obj._item(ex, train=False) for ex in task_obj.examples("val") if ex.uid in wanted]
    order = {k: i for i, k in enumerate(keys)}
    items.sort(key=lambda it: order[it.example.uid])
    batch = task_obj.collate(items)
    with torch.no_grad():
        scores = method.scorer()(batch)
        logits = task_obj.option_scores(scores, batch)
        loss = task_obj.loss(scores, batch)
    return {"logits": logits.tolist(), "loss": float(loss)}
