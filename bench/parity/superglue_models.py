"""Fixed-weight cases of the SuperGLUE parity study: P-tuning-v2's prefix models beside the suite's ``ptuning_v2``.

Each case gives both sides the same tiny backbone, the same prefix encoder (a table, or the MLP of
``--prefix_projection``), pooler and classifier weights (a deterministic sine pattern, no random
stream) and the same examples (the reference's batch comes from its own ``SuperGlueDataset``, the
suite's from the preset's task); the golden file keeps what the reference computed: the prefix
past key values, the attention mask with the prefix columns, the logits, the loss, and the
statistics of its own initialisation (``from_pretrained`` filling the modules the checkpoint lacks).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

STUDY = "superglue"


class CaseNames:
    """What a case's model and task names imply (shared by this module's and superglue_heads' cases)."""

    model: str
    task: str

    @property
    def arch(self) -> str:
        return "bert" if self.model == "tiny-bert" else "roberta"

    @property
    def multiple_choice(self) -> bool:
        return self.task == "copa"


@dataclass(frozen=True)
class Case(CaseNames):
    name: str
    model: str  # tiny-bert | tiny-roberta
    task: str
    psl: int  # --pre_seq_len
    projection: bool  # --prefix_projection
    mid: int = 16  # --prefix_hidden_size (512 in the reference's default; small here to keep the golden small)
    template_id: int = 0
    n_examples: int = 4


CASES = (
    Case("rte_bert_table", "tiny-bert", "rte", 4, False),
    Case("rte_bert_projection", "tiny-bert", "rte", 4, True),
    Case("rte_roberta_table", "tiny-roberta", "rte", 4, False),
    Case("rte_roberta_projection", "tiny-roberta", "rte", 4, True),
    Case("wic_bert_projection", "tiny-bert", "wic", 4, True, template_id=1),
    Case("copa_bert_table", "tiny-bert", "copa", 4, False),
    Case("boolq_roberta_table", "tiny-roberta", "boolq", 4, False),
)
# suite parameter name (ptuning_v2 own_modules + pooler) -> the reference's, {base} = bert | roberta
REF_NAMES = {
    "prefix.encoders.layers.embedding.weight": "prefix_encoder.embedding.weight",
    "prefix.encoders.layers.transform.0.weight": "prefix_encoder.trans.0.weight",
    "prefix.encoders.layers.transform.0.bias": "prefix_encoder.trans.0.bias",
    "prefix.encoders.layers.transform.2.weight": "prefix_encoder.trans.2.weight",
    "prefix.encoders.layers.transform.2.bias": "prefix_encoder.trans.2.bias",
    "head.classifier.weight": "classifier.weight",
    "head.classifier.bias": "classifier.bias",
    "pooler.dense.weight": "{base}.pooler.dense.weight",
    "pooler.dense.bias": "{base}.pooler.dense.bias",
}


def pattern(shape: torch.Size, salt: int, scale: float) -> torch.Tensor:
    """A fixed, version-independent weight tensor: scale * sin(0.7 i + salt) over its elements."""
    n = math.prod(shape)
    values = torch.sin(torch.arange(n, dtype=torch.float64) * 0.7 + salt) * scale
    return values.to(torch.float32).reshape(shape)


def suite_method(case: Case, backbone, n_out: int):
    """The suite's ptuning_v2 (labels, pooler head) with the case's fixed weights; eval mode, no dropout."""
    from bench.methods.ptuning_v2 import PTuningV2

    method = PTuningV2(length=case.psl, reparameterize=case.projection, mid_dim=case.mid, dropout=0.0,
                       output_space="labels", pool="pooler", head_dropout=0.0, backbone_dropout=False)
    method.setup(copy.deepcopy(backbone))
    method.set_num_labels(n_out)
    with torch.no_grad():
        for salt, (name, param) in enumerate(sorted(named_weights(method).items())):
            param.copy_(pattern(param.shape, salt, 0.5 if "embedding" in name else 0.2))
    method.eval_mode()
    return method


def named_weights(method) -> dict[str, torch.nn.Parameter]:
    """The weights both sides share by name (REF_NAMES' keys)."""
    out = {f"{group}.{name}": p for group, module in method.own_modules().items()
           for name, p in module.named_parameters()}
    out.update({f"pooler.{name}": p for name, p in method.pooler.named_parameters()})
    missing = set(out) - set(REF_NAMES)
    if missing:
        raise KeyError(f"no reference name for {sorted(missing)}")
    return out


def reference_weights(case: Case, method) -> dict[str, list]:
    return {REF_NAMES[name].format(base=case.arch): p.detach().tolist() for name, p in named_weights(method).items()}


def write_checkpoint(backbone, target: Path, source: Path) -> Path:
    """The tiny backbone as transformers 4.11 reads it: config.json and a pytorch_model.bin (no safetensors)."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "config.json", target / "config.json")
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.model.state_dict().items()}
    torch.save(state, target / "pytorch_model.bin")
    return target


def suite_outputs(case: Case, task_obj, method, keys: list[str]) -> dict[str, Any]:
    """What the suite computes for the case: prefixes, the extended mask, logits (examples x options), loss."""
    items = [task_obj._item(ex, train=False) for ex in task_obj.examples("val") if ex.uid in set(keys)]
    order = {k: i for i, k in enumerate(keys)}
    items.sort(key=lambda it: order[it.example.uid])
    batch = task_obj.collate(items)
    with torch.no_grad():
        prefixes = method.prompts.prefixes()["layers"]
        patched = method.patch()("model", {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask})
        scores = method.scorer()(batch)
        logits = task_obj.option_scores(scores, batch)
        loss = task_obj.loss(scores, batch)
    return {"past_key_values": prefixes.tolist(), "attention_mask": patched["attention_mask"].tolist(),
            "logits": logits.tolist(), "loss": float(loss), "lengths": batch.attention_mask.sum(-1).tolist()}
