"""T5's SuperGLUE text-to-text inputs (issue 24, item 11), by a plain second implementation of T5's rule.

google-research/text-to-text-transfer-transformer t5/data/glue_utils.py builds every SuperGLUE task but
WSC and ReCoRD with ``preprocessors.glue``: "<task> <name>: <value> ..." over the example's features
sorted by name (``label`` and ``idx`` left out), except MultiRC (question, answer, paragraph) and WiC
(sentence1, sentence2, word: the start/end indices left out); the target is the label name. Read
from T5's source, not executed here (its preprocessors need TensorFlow): this rule is rebuilt below
and the suite's Lester templates (conf/template/t5_<task>.yaml) must render to it.
"""

from __future__ import annotations

import json

import pytest
import yaml

from bench.paths import REPO_ROOT, data_dir
from bench.prompts import render, templates_for
from bench.prompts.text2text import label_ids, text2text_entry
from bench.superglue import data as sg

FEATURES = {"boolq": ["passage", "question"], "cb": ["hypothesis", "premise"], "rte": ["hypothesis", "premise"],
            "wic": ["sentence1", "sentence2", "word"]}  # the features of the tasks the suite has T5 templates for
LABELS = {"boolq": ["False", "True"], "cb": ["entailment", "contradiction", "neutral"],
          "rte": ["entailment", "not_entailment"], "wic": ["False", "True"]}


def t5_glue(task: str, row: dict) -> tuple[str, str]:
    """T5's glue preprocessor on one row of the official file: (inputs, targets)."""
    keys = FEATURES[task] if task in ("wic", "multirc") else sorted(FEATURES[task])
    parts = [task]
    for key in keys:
        parts += [f"{key}:", str(row[key])]
    label = row["label"]
    index = LABELS[task].index(label) if isinstance(label, str) else int(label)
    return " ".join(parts), LABELS[task][index]


@pytest.mark.parametrize("task", sorted(FEATURES))
def test_lester_templates_render_t5s_superglue_input(tiny_backbone, task):
    tok = tiny_backbone("tiny-t5").tokenizer
    conf = yaml.safe_load((REPO_ROOT / "conf" / "template" / f"t5_{task}.yaml").read_text())
    template = templates_for(conf, family="seq2seq")[0]
    folder = {"boolq": "BoolQ", "cb": "CB", "rte": "RTE", "wic": "WiC"}[task]
    lines = (data_dir() / "superglue" / folder / "val.jsonl").read_text().splitlines()[:20]
    for line in lines:
        row = json.loads(line)
        inputs, target = t5_glue(task, row)
        (ex,) = sg.examples_from_row(sg.canonical_task(task), row, f"val-{row['idx']}")
        rendered = render(template, ex.fields, tok, "seq2seq", max_length=10_000, num_target_tokens=1)
        entry = text2text_entry(rendered, label_ids(conf["verbalizer"][sg.LABELS[ex.task][ex.label]], tok), tok)
        assert entry.input_ids == tok(inputs)["input_ids"], (task, row["idx"])
        assert entry.token_ids == tok(target)["input_ids"]
