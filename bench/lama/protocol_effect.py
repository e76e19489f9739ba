"""The measured effect of ``task.protocol`` on a frozen model's manual-prompt LAMA evaluation.

``python -m bench.lama.protocol_effect --model tiny-gpt2 --variant lama29k`` scores every test fact
(or the first ``--per-relation`` kept facts of each relation) with the manual LAMA prompts under both
protocols on the same loaded model, and prints macro / pooled P@1 each way, the facts whose rendered
query differs and the facts whose top-1 token differs (docs/lama-protocol.md quotes its output).
Trained choices (query order, GPT-2 training position, loop) need training runs: compare the study's
``<preset>`` and ``<preset>_paper`` records (``make reproduce-lama``).
"""

from __future__ import annotations

import argparse
import sys

from bench.lama import data as lama_data
from bench.lama.evaluation import build_candidates, frozen_scorer, predict, render_facts, score_items
from bench.lama.runner import relation_templates

PROTOCOLS = ("paper", "reference")
MANUAL = {"name": "lama", "kind": "prompt_set", "prompt_set": "lama", "rank": 0}


def measure(backbone, vocab_key: str, variant: str = "lama29k", per_relation: int | None = None,
            batch_size: int = 64) -> dict:
    """P@1 under each protocol plus how many queries and top-1 tokens differ, on the same facts."""
    tok, family = backbone.tokenizer, backbone.family
    candidates = build_candidates(lama_data.load_vocab(variant, vocab_key), tok, family)
    templates, _ = relation_templates(MANUAL, lama_data.relation_ids())
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    items, predictions = {}, {}
    for protocol in PROTOCOLS:
        rendered = []
        for relation, template in templates.items():
            facts = lama_data.load_facts(relation, "test", variant) or []
            kept, _ = lama_data.filter_facts(facts, set(candidates.word_to_id))
            rendered += render_facts(kept[:per_relation] if per_relation else kept, template, tok, family,
                                     candidates, protocol=protocol)
        items[protocol] = rendered
        predictions[protocol] = predict(rendered, frozen_scorer(backbone.model), candidates, pad_id,
                                        batch_size=batch_size, device=backbone.device, desc=f"LAMA {protocol}")
    paper, reference = items["paper"], items["reference"]
    return {
        "n_facts": len(paper),
        "p_at_1": {p: score_items(items[p], predictions[p])["overall"] for p in PROTOCOLS},
        "queries_differ": sum(a.input_ids != b.input_ids or a.target_positions != b.target_positions
                              for a, b in zip(paper, reference, strict=True)),
        "top1_differ": sum(a != b for a, b in zip(predictions["paper"], predictions["reference"], strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    from bench.backbones import load_backbone, load_model_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-gpt2", help="conf/model name (mini-gpt2 is built on first use, ~35 min)")
    p.add_argument("--variant", default="lama29k", choices=["lama29k", "lama34k"])
    p.add_argument("--per-relation", type=int, default=None, help="first N kept test facts per relation (default all)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (fp32 either way)")
    args = p.parse_args(argv)
    cfg = load_model_config(args.model)
    backbone = load_backbone(cfg, device=args.device, dtype="fp32")
    result = measure(backbone, cfg["lama_vocab_key"], args.variant, args.per_relation)
    print(f"{args.model} {args.variant} manual prompts, {result['n_facts']:,} test facts, fp32")
    for protocol, overall in result["p_at_1"].items():
        print(f"  protocol {protocol:9s}: macro P@1 {100 * overall['macro_over_relations']:.2f}, "
              f"pooled {100 * overall['pooled']:.2f}")
    print(f"  queries that differ: {result['queries_differ']:,}; top-1 tokens that differ: {result['top1_differ']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
