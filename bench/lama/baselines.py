"""Reference points that need no model: the majority-object baseline of LAMA.

Majority object: per relation, predict the most frequent ``obj_label`` of the relation's train facts
(dev facts when the relation has no train file; ties go to the alphabetically first label), among the
objects that pass the same vocabulary filter as the model's candidates. It is scored with the same
P@1 code on the same filtered facts, so ``python -m bench.lama.baselines --model mini-bert`` and a
``bench.run`` record of that model are comparable number for number.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Sequence

from bench.lama import data as lama_data
from bench.metrics import FactOutcome, p_at_1

SOURCE_SPLITS = ("train", "dev")


def majority_objects(relations: Iterable[str], variant: str, allowed: set[str] | None = None,
                     train_facts: str | None = None) -> dict[str, tuple[str | None, str | None]]:
    """relation -> (most frequent allowed train object, split it was counted on); (None, None) without facts.

    ``train_facts``: folder of the train/dev facts (``task.train_facts``); None: the variant's."""
    chosen: dict[str, tuple[str | None, str | None]] = {}
    for relation in relations:
        chosen[relation] = (None, None)
        for split in SOURCE_SPLITS:
            facts = lama_data.load_facts(relation, split, variant, train_facts=train_facts)
            if not facts:
                continue
            counts = Counter(f.obj_label for f in facts if allowed is None or f.obj_label in allowed)
            if counts:
                best = min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
                chosen[relation] = (best, split)
                break
    return chosen


def majority_baseline(variant: str, allowed: set[str], relations: str | Sequence[str] = "all",
                      split: str = "test", include_reconstructed: bool = True) -> dict:
    """P@1 of the majority object on `split` facts that pass the vocabulary filter (``p_at_1`` layout)."""
    rels = lama_data.select_relations(relations)
    majority = majority_objects(rels, variant, allowed)
    outcomes: list[FactOutcome] = []
    for relation in rels:
        facts = lama_data.load_facts(relation, split, variant)
        if facts is None:
            continue
        kept, _ = lama_data.filter_facts(facts, allowed, include_reconstructed=include_reconstructed)
        guess = majority[relation][0]
        outcomes.extend(FactOutcome(relation, f.obj_label == guess, f.reconstructed) for f in kept)
    result = p_at_1(outcomes)
    result["majority"] = {rel: {"object": obj, "from": src} for rel, (obj, src) in majority.items()}
    return result


def allowed_objects(variant: str, vocab_key: str, tokenizer=None, family: str = "mlm") -> set[str]:
    """The LAMA list words a model can predict: single tokens for `tokenizer` (all listed words without one)."""
    words = lama_data.load_vocab(variant, vocab_key)
    if tokenizer is None:
        return set(words)
    from bench.lama.evaluation import build_candidates

    return set(build_candidates(words, tokenizer, family).word_to_id)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="lama34k")
    parser.add_argument("--model", help="conf/model name: filter with its tokenizer and vocabulary key")
    parser.add_argument("--vocab-key", default="bert-base-cased", help="used when --model is not given")
    parser.add_argument("--split", default="test")
    parser.add_argument("--relations", nargs="*", default=None)
    args = parser.parse_args(argv)
    tokenizer, family, key = None, "mlm", args.vocab_key
    if args.model:
        from bench.backbones.loading import load_backbone, load_model_config

        backbone = load_backbone(load_model_config(args.model), device="cpu", dtype="fp32")
        tokenizer, family, key = backbone.tokenizer, backbone.family, backbone.lama_vocab_key or key
    allowed = allowed_objects(args.variant, key, tokenizer, family)
    result = majority_baseline(args.variant, allowed, args.relations or "all", args.split)
    print(json.dumps({"overall": result["overall"], "real_only": result["subsets"]["real_only"],
                      "per_relation": {r: round(g["p_at_1"], 4) for r, g in result["groups"].items()}}, indent=2))


if __name__ == "__main__":
    main()
