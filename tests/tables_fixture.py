"""Hand-made LAMA run records (schema 1, as bench.records wrote them) covering every table and chart.

Values are chosen so that every number in the tables can be computed by hand; tests import
:func:`write_fixture` and :func:`write_schema2`.
"""

from __future__ import annotations

import json
from pathlib import Path

P17_PROMPTS = ["[X] is located in [Y] .", "[X] is located in which country or state? [Y] .",
               "[X] is located in which country? [Y] .", "[X] is located in which country? In [Y] ."]


def record(task: str, model: str, method: str, template: str, p_at_1: dict[str, float], *, variant="lama34k",
           seed=34, tag=None, texts=None, config=None, extra=None, real_only=None, schema=1, rank=None,
           config_hash=None, dev=None) -> dict:
    """A finished LAMA record: per-relation test P@1 given, macro = mean, pooled = hits / facts (n=10)."""
    groups = {rel: {"n": 10, "hits": round(10 * p), "p_at_1": p, "n_reconstructed": 0} for rel, p in p_at_1.items()}
    macro = sum(p_at_1.values()) / len(p_at_1)
    overall = {"macro_over_relations": macro, "pooled": macro, "n_facts": 10 * len(p_at_1),
               "n_hits": sum(g["hits"] for g in groups.values()), "n_relations": len(p_at_1)}
    subsets = {"real_only": {"macro_over_relations": real_only, "pooled": real_only}} if real_only is not None else {}
    metrics = {"test": {"overall": overall, "groups": groups, "subsets": subsets},
               "dev": {"overall": {"macro_over_relations": macro if dev is None else dev}, "groups": {}}}
    name_template = template if schema == 1 or not rank else f"{template}-r{rank}"
    task_name = f"{task}-{variant}" if variant else task
    name = "__".join([task_name, model, method, name_template, f"seed{seed}", *([tag] if tag else [])])
    spec = {"task": task, "variant": variant, "model": model, "method": method, "template": template,
            "seed": seed, "tag": tag}
    out = {"schema_version": schema, "name": name, "status": "finished", "spec": spec, "metrics": metrics,
           "selection_split": "dev", "report_split": "test", "params": {"trainable": 0},
           "config": config or {"task": {"relations": "all", "protocol": "reference"}, "model": {},  # as the LAMA presets
                                "method": {"name": method}},
           "extra": {"templates": texts or {}, **(extra or {})}}
    if schema == 2:
        out["name"] = f"{name}__{config_hash}"
        spec.update(rank=rank, preset=None, config_hash=config_hash)
        out["protocol"] = {"selection_split": "dev", "selection_rule": "best dev P@1", "report_split": "test",
                           "seeds": [seed]}
    return out


def save(runs: Path, rec: dict) -> Path:
    path = Path(runs) / rec["spec"]["task"] / f"{rec['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec), encoding="utf-8")
    return path


def ranked(template: str, rank: int) -> str:
    return template + (f"-r{rank}" if rank else "")


def write_fixture(runs: Path) -> list[Path]:
    """Every table and chart gets data: LAMA-34k and -29k columns, ranks, P17 prompts, departures."""
    paths = []
    add = lambda *a, **k: paths.append(save(runs, record("lama", *a, **k)))  # noqa: E731
    # LAMA-34k, bert-base-cased: manual (also fills P17's first prompt by its text), majority, LPAQA, P-Tuning
    add("bert-base-cased", "manual", "lama", {"P17": 0.30, "P19": 0.50, "P1001": 0.10},
        texts={"P17": P17_PROMPTS[0], "P19": "[X] was born in [Y] .", "P1001": "[X] is a legal term in [Y] ."},
        real_only=0.25)
    add("bert-base-cased", "majority", "lama", {"P17": 0.20, "P19": 0.10, "P1001": 0.00})
    add("bert-base-cased", "manual", "lpaqa", {"P17": 0.40, "P19": 0.30, "P1001": 0.20})
    add("bert-base-cased", "manual", "autoprompt_bert", {"P17": 0.50, "P19": 0.40, "P1001": 0.30})
    add("bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.60, "P19": 0.70, "P1001": 0.50},
        config={"task": {"relations": "all", "limit_per_relation": 4, "protocol": "reference"}, "model": {"arch": "bert"},
                "method": {"name": "ptuning"}, "trainer": {"lr": 1e-3, "max_epochs": 5, "early_stopping_patience": 2},
                "template": {"kind": "ptuning", "order": "paper"}})
    # P17 prompts of Table 1 (ranks 0-3), bert-base-cased
    for rank, value in enumerate([0.30, 0.20, 0.35, 0.45]):
        add("bert-base-cased", "manual", ranked("p17_sensitivity", rank), {"P17": value},
            texts={"P17": P17_PROMPTS[rank]})
    # paraphrase sets: ParaRel (3 ranks), LPAQA paraphrases (2 ranks)
    for rank, values in enumerate([{"P17": 0.10, "P19": 0.40, "P1001": 0.20}, {"P17": 0.30, "P19": 0.20},
                                   {"P17": 0.50, "P1001": 0.00}]):
        add("bert-base-cased", "manual", ranked("pararel", rank), values)
    for rank, values in enumerate([{"P17": 0.20, "P19": 0.60}, {"P17": 0.40, "P19": 0.30}]):
        add("bert-base-cased", "manual", ranked("lpaqa_paraphrase", rank), values)
    # tiny-gpt2 [smoke]: manual, P-Tuning departing from the protocol, two ParaRel ranks, an own P17 prompt
    gpt2_config = {"task": {"relations": "all", "limit_per_relation": 4, "protocol": "reference"}, "model": {"arch": "gpt2"},
                   "method": {"name": "ptuning"}, "template": {"kind": "ptuning", "order": "code"}}
    add("tiny-gpt2", "manual", "lama", {"P17": 0.25, "P19": 0.05}, tag="smoke",
        texts={"P17": "[X] is located in [Y].", "P19": "[X] was born in [Y] ."})
    add("tiny-gpt2", "ptuning", "ptuning_lama", {"P17": 0.15}, tag="smoke", config=gpt2_config,
        extra={"vocabulary": {"key": "gpt2-xl", "n_listed": 18154}, "relations_skipped": {"P19": "no train facts"}})
    add("tiny-gpt2", "manual", "pararel", {"P17": 0.05, "P19": 0.15}, tag="smoke")
    add("tiny-gpt2", "manual", "pararel-r1", {"P17": 0.35, "P19": 0.05}, tag="smoke")
    add("tiny-gpt2", "manual", "p17_sensitivity-r4", {"P17": 0.12}, tag="smoke",
        texts={"P17": "[X] lies in the country of [Y] ."})
    # LAMA-29k: bert-base-cased MP, FT, MP+FT, PT; roberta-base MP and AutoPrompt (its own set)
    for method, template, values in (("manual", "lama", {"P17": 0.30, "P19": 0.40}),
                                     ("lm_finetune", "bare", {"P17": 0.50, "P19": 0.60}),
                                     ("lm_finetune", "lama", {"P17": 0.55, "P19": 0.65}),
                                     ("ptuning", "ptuning_lama", {"P17": 0.52, "P19": 0.62})):
        add("bert-base-cased", method, template, values, variant="lama29k")
    add("roberta-base", "manual", "lama", {"P17": 0.10, "P19": 0.30}, variant="lama29k")
    add("roberta-base", "manual", "autoprompt_roberta", {"P17": 0.40, "P19": 0.42}, variant="lama29k")
    return paths


def kshot_record(task: str, model: str, method: str, template: str, test: float, dev: float, *, seed=13, rank=0,
                 config_hash="c0", tag=None) -> dict:
    """A finished LM-BFF record (schema 2): test and dev accuracy; ``config_hash`` marks a grid point."""
    name = "__".join([f"{task}-k16", model, method, template + (f"-r{rank}" if rank else ""), f"seed{seed}",
                      *([tag] if tag else []), config_hash])
    spec = {"task": task, "variant": "k16", "model": model, "method": method, "template": template, "seed": seed,
            "tag": tag, "rank": rank, "preset": None, "config_hash": config_hash}
    return {"schema_version": 2, "name": name, "status": "finished", "spec": spec,
            "metrics": {"test": {"overall": {"accuracy": test, "n": 10}}, "dev": {"overall": {"accuracy": dev}}},
            "selection_split": "dev", "report_split": "test", "params": {"trainable": 1},
            "protocol": {"selection_split": "dev", "selection_rule": "best dev accuracy", "report_split": "test",
                         "seeds": [seed]},
            "config": {"task": {}, "model": {}, "method": {"name": method}}, "extra": {}}


def sg_record(task: str, model: str, method: str, template: str, val: dict[str, float], *, seed=42, rank=0,
              tag=None, config_hash="c0ffee00", preset=None, dev32: dict[str, float] | None = None) -> dict:
    """A finished FewGLUE record (schema 2): the given ``val`` metrics, dev32 selected (score = their mean);
    ``dev32`` gives that split other metrics (default: val's)."""
    overall = {**val, "score": sum(val.values()) / len(val), "n": 10}
    dev = overall if dev32 is None else {**dev32, "score": sum(dev32.values()) / len(dev32), "n": 32}
    name_template = f"{template}-r{rank}"
    name = "__".join([f"{task}-fewglue", model, method, name_template, f"seed{seed}", *([tag] if tag else []),
                      config_hash])
    spec = {"task": task, "variant": "fewglue", "model": model, "method": method, "template": template,
            "seed": seed, "tag": tag, "rank": rank, "preset": preset, "config_hash": config_hash}
    return {"schema_version": 2, "name": name, "status": "finished", "spec": spec,
            "metrics": {"val": {"overall": overall, "groups": {}}, "dev32": {"overall": dev, "groups": {}}},
            "selection_split": "dev32", "report_split": "val", "params": {"trainable": 0},
            "protocol": {"selection_split": "dev32", "selection_rule": "scripted", "report_split": "val",
                         "seeds": [seed]},
            "config": {"task": {}, "model": {}, "method": {"name": method}}, "extra": {}}
