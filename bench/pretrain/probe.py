"""LAMA probe of an in-memory model (manual prompts) beside the majority-object baseline.

Runs the suite's LAMA evaluation code (``bench.lama.runner.evaluate_split``) on a model that is
not saved yet, so a pretraining record can say what the model knows. The numbers equal those of
``python -m bench.run experiment=lama34k_manual model=<mini>`` for the same weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from bench.lama.baselines import majority_baseline

FAMILY = {"bert": "mlm", "gpt2": "clm"}
LAMA_TEMPLATE = {"name": "lama", "kind": "prompt_set", "prompt_set": "lama", "rank": 0}


@dataclass
class _Backbone:
    tokenizer: Any
    family: str
    device: torch.device


def _summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    def pick(block: Mapping[str, Any]) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in block.items()}

    return {"overall": pick(metrics["overall"]), "real_only": pick(metrics["subsets"]["real_only"]),
            "per_relation": {r: round(g["p_at_1"], 4) for r, g in metrics["groups"].items()}}


def probe(model: torch.nn.Module, tokenizer, arch: str, vocab_key: str, variant: str = "lama34k",
          relations: str | Sequence[str] = "all", splits: Sequence[str] = ("test",)) -> dict[str, Any]:
    """Manual-prompt P@1 and majority-object P@1 per split, on the same vocabulary-filtered facts."""
    from bench.lama import data as lama_data
    from bench.lama.evaluation import build_candidates, frozen_scorer
    from bench.lama.runner import evaluate_split, relation_templates

    family = FAMILY[arch]
    model.eval()
    backbone = _Backbone(tokenizer, family, torch.device("cpu"))
    candidates = build_candidates(lama_data.load_vocab(variant, vocab_key), tokenizer, family)
    templates, _ = relation_templates(LAMA_TEMPLATE, lama_data.select_relations(relations))
    task = {"variant": variant, "include_reconstructed": True, "batch_size": 128}
    allowed = set(candidates.word_to_id)
    out: dict[str, Any] = {"variant": variant, "vocab_key": vocab_key, "n_single_token": len(allowed)}
    for split in splits:
        metrics, _ = evaluate_split(split, task, backbone, frozen_scorer(model), candidates, templates)
        out[split] = {"manual": _summary(metrics),
                      "majority": _summary(majority_baseline(variant, allowed, list(templates), split))}
    return out


def headline(result: Mapping[str, Any], split: str = "test") -> str:
    """One line: macro P@1 manual vs majority, over all relations and over those with real test files."""
    block = result[split]
    m, b = block["manual"], block["majority"]
    return (f"{split} macro P@1 manual {m['overall']['macro_over_relations']:.3f} vs majority "
            f"{b['overall']['macro_over_relations']:.3f} ({m['overall']['n_relations']} relations); "
            f"real test files: {m['real_only']['macro_over_relations']:.3f} vs "
            f"{b['real_only']['macro_over_relations']:.3f} ({m['real_only']['n_relations']})")
