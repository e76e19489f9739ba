"""ICL records the demonstrations each example actually read, and warns when fewer than k fit."""

import logging

import yaml

from bench.methods.icl import InContext, demonstration_text
from bench.paths import REPO_ROOT, data_dir
from bench.prompts import render, templates_for, verbalizer_for
from bench.superglue.data import load_split
from bench.superglue.runner import run_classification


def rte_tree(out, n: int = 8):
    for src in {"train": "fewglue/RTE/train.jsonl", "dev32": "fewglue/RTE/dev32.jsonl",
                       "val": "superglue/RTE/val.jsonl"}.values():
        dst = out / src
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("".join((data_dir() / src).read_text().splitlines(keepends=True)[:n]))
    return out


def conf(group: str, name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "conf" / group / f"{name}.yaml").read_text())


def test_demonstrations_used_are_recorded_and_fewer_than_k_warns(tiny_backbone, tmp_path, caplog):
    backbone, data, budget, k = tiny_backbone("tiny-gpt2"), rte_tree(tmp_path / "data", n=8), 250, 3
    cfg = {"task": {**conf("task", "rte"), "max_length": budget}, "template": conf("template", "gpt3_rte"),
           "method": {"multi_token": "refuse"}, "seed": 3, "paths": {"data_dir": str(data)}}
    method = InContext(k=k)
    method.setup(backbone)
    with caplog.at_level(logging.WARNING):
        record = run_classification(cfg, backbone, method)
    used = record["extra"]["demonstrations"]["splits"]["val"]

    # independently: the longest prefix of the seeded draw whose rendered input fits the budget
    template = templates_for(cfg["template"], family="clm")[0]
    words = verbalizer_for(cfg["template"]).label_words
    train = load_split("RTE", "train", "fewglue", root=data)
    labels = ("entailment", "not_entailment")
    expected = {}
    for ex in load_split("RTE", "val", "fewglue", root=data):
        drawn = method.sample(train, ex.uid, 3)
        texts = [demonstration_text(template, d.fields, words[labels[d.label]][0]) for d in drawn]
        m = len(drawn)
        while m:
            full, values = method.with_demonstrations(template, ex.fields, texts[:m], "clm")
            if len(render(full, values, backbone.tokenizer, "clm").input_ids) <= budget:
                break
            m -= 1
        expected[ex.uid] = [d.uid for d in drawn[:m]]
    assert used["per_example"] == expected
    counts = [len(v) for v in expected.values()]
    assert 0 < sum(c < k for c in counts) < len(counts)  # the budget drops some demonstrations, not all
    assert (used["n_fewer_than_k"], used["min_used"], used["max_used"]) == (sum(c < k for c in counts), min(counts),
                                                                            max(counts))
    assert any("read fewer than k=3 demonstrations" in r.getMessage() for r in caplog.records)
