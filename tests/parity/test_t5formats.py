"""T5's SuperGLUE text-to-text formats: the suite's t5_<task> templates write exactly what T5's own preprocessors
wrote, from committed golden files.

The goldens (tests/golden/parity/t5formats/<task>.json[.gz]) hold the ``inputs`` / ``targets`` strings that
tensorflow-datasets' ``super_glue`` generator plus T5's preprocessors (google-research/text-to-text-transfer-
transformer @e081111, executed in its own environment by ``python -m bench.parity t5formats --ref ...``)
produced on the suite's prepared rows, and those strings' ids under the tiny T5 tokenizer (the whole string
tokenised at once). Neither TensorFlow nor T5 is needed here.
"""

from __future__ import annotations

import pytest

from bench.io_utils import read_jsonl
from bench.parity import t5formats as P
from bench.parity.golden import load_golden
from bench.superglue.t5_fields import multirc_text


@pytest.fixture(scope="module")
def tok(tiny_backbone):
    return tiny_backbone("tiny-t5").tokenizer


@pytest.mark.parametrize("task", P.TASKS)
def test_suite_strings_and_ids_equal_t5s(task, tok):
    result = P.compare(task, tok)
    assert set(result) == set(P.splits_for(task)), "a compared split has no golden examples"
    for split, tally in result.items():
        assert tally.ok, f"{task} {split}: {tally.counts}; first: {tally.first}"


@pytest.mark.parametrize("task", P.TASKS)
def test_goldens_cover_fifty_per_split_and_t5_ran_on_every_row(task):
    golden = load_golden(P.STUDY, task)
    assert golden["reference"] == f"{P.SPEC.repo}@{P.SPEC.commit}"
    assert set(golden["splits"]) == set(P.splits_for(task))
    for split, examples in golden["splits"].items():
        n_rows = len(read_jsonl(P.split_path(task, split)))  # FewGLUE's files have 32 rows
        assert len(examples) >= min(P.N_FIRST, n_rows), (split, len(examples))
        assert not [e for e in examples if "error" in e]
        assert all("taskless" in e for e in examples)  # regenerated with --prompt-tuning


def test_multirc_markup_rule_by_hand():
    """The prepared MultiRC rows carry no markup, so T5's rule (<br> -> space, <b> </b> dropped) is checked here."""
    assert multirc_text("<b>Sent 1: </b>It rained.<br><b>Sent 2: </b>We stayed in.") == (
        "Sent 1: It rained. Sent 2: We stayed in.")


def test_golden_strings_show_t5s_layout():
    """Hand-checked facts of T5's formats, so a regenerated golden that lost them fails here too."""
    first = {t: load_golden(P.STUDY, t)["splits"] for t in ("copa", "multirc", "record", "wsc", "rte")}
    copa = first["copa"]["sg_val"][0]
    assert copa["inputs"] == ("copa choice1: The toilet filled with water. choice2: Water flowed from the spout. "
                              "premise: The man turned on the faucet. question: effect")
    assert copa["targets"] == ["choice2"]
    assert first["rte"]["sg_val"][0]["inputs"].startswith("rte hypothesis: ")
    assert first["rte"]["sg_val"][0]["taskless"] == len("rte ")  # prompt-tuning's taskless_*: the task name dropped
    assert {e["taskless"] for e in first["wsc"]["sg_val"]} == {len("wsc: ")}
    multirc = [e for e in first["multirc"]["sg_val"] if e["uid"].startswith("val-0-")]
    assert multirc and all(e["inputs"].startswith("multirc question: ") and "<b>" not in e["inputs"]
                           and "<br>" not in e["inputs"] for e in multirc)
    assert {e["targets"][0] for e in multirc} == {"False", "True"}
    record = next(iter(first["record"].values()))[0]
    assert record["inputs"].startswith("record query: ") and " entities: " in record["inputs"]
    assert "@highlight" not in record["inputs"]
    wsc = first["wsc"]["sg_train"]
    assert all(e["inputs"].startswith("wsc: ") and e["inputs"].count("*") >= 2 for e in wsc)
    both = wsc + first["wsc"]["sg_val"]
    odd = [e["inputs"] for e in both if '"Good for *him* ," he said.' in e["inputs"] or "use *it* ," in e["inputs"]]
    assert len(odd) == 4  # the 4 official rows T5 special-cases (their pronoun index misses the pronoun)
    assert not [text for text in odd if text.endswith(" ")]
    assert {e["in_train_task"] for e in wsc} == {True, False}  # T5 trains WSC on correct referents only
