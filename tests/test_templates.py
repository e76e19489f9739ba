"""The template language: parsing, syntax errors, and template configs (conf/template/*.yaml)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from bench.errors import ConfigError, DataError
from bench.paths import REPO_ROOT
from bench.prompts import ptuning_text, templates_for, verbalizer_for
from bench.prompts.template import Anchor, Field, Sep, Soft, Target, Text, parse_template

CONF = REPO_ROOT / "conf" / "template"


def test_lama_template_segments():
    t = parse_template("[X] is located in [Y] .")
    assert t.segments == (Field("x"), Text(" is located in "), Target(), Text(" ."))
    assert (t.fields, t.num_soft, t.has_target, str(t)) == (("x",), 0, True, "[X] is located in [Y] .")
    assert t.fill({"x": "Paris"}) == "Paris is located in [MASK] ."
    assert t.fill({"x": "Paris"}, target="France") == "Paris is located in France ."


def test_ptuning_shapes_and_anchor():
    t = parse_template("[P:3] [X] [P:3] [Y] [P:3]")
    assert t.segments == (Soft(3), Text(" "), Field("x"), Text(" "), Soft(3), Text(" "), Target(), Text(" "), Soft(3))
    assert (t.num_soft, t.soft_blocks) == (9, (3, 3, 3))
    t = parse_template("{premise}[P][A:?][P:2][MASK]{hypothesis}")
    assert t.segments == (Field("premise"), Soft(1), Anchor("?"), Soft(2), Target(), Field("hypothesis"))
    assert t.fields == ("premise", "hypothesis") and t.soft_blocks == (1, 2)


def test_pair_separator():
    t = parse_template("{hypothesis} ? [SEP] [MASK] , {premise}")
    assert t.is_pair and t.segments[2] == Sep() and not parse_template("[X] [Y]").is_pair
    assert t.fill({"hypothesis": "h", "premise": "p"}, sep="|") == "h ? | [MASK] , p"


def test_field_modifiers():
    t = parse_template("{premise:trunc,drop_last}? [MASK], {hypothesis:lcfirst}")
    premise, hypothesis = t.segments[0], t.segments[-1]
    assert premise == Field("premise", trunc=True, drop_last=True)
    assert hypothesis == Field("hypothesis", lcfirst=True)
    assert t.fill({"premise": "It rains.", "hypothesis": "The street is wet."}) == "It rains? [MASK], the street is wet."


def test_brackets_that_open_no_slot_are_literal():
    # AutoPrompt's RoBERTa prompt for P1412 contains a bare "[" (a searched BPE token)
    t = parse_template("[X] [ fluentBritish nor lousy [Y] .")
    assert t.segments == (Field("x"), Text(" [ fluentBritish nor lousy "), Target(), Text(" ."))
    assert parse_template("[X] says [] and {} and [\u2026] [Y]").segments[1] == Text(" says [] and {} and [\u2026] ")


@pytest.mark.parametrize(("text", "message"), [
    ("[X] is [Z] [Y] .", "column 8: unknown slot [Z]"),
    ("[X] is [Y] or [MASK] .", "column 15: second target slot [MASK] (the first is at column 8)"),
    ("[P:0] [X] [Y]", "column 1: [P:0]: the pseudo-token count must be a whole number >= 1"),
    ("[P:x] [X] [Y]", "column 1: [P:x]: the pseudo-token count"),
    ("[X] [A:] [Y]", "column 5: [A:]: an anchor needs text"),
    ("{x:bogus} [Y]", "column 1: {x:bogus}: unknown field modifier 'bogus'"),
    ("[X is located in [Y] .", "column 1: unclosed slot"),
    ("[x] is located in [Y] .", "column 1: unknown slot [x]"),
    ("{a} [SEP] {b} [SEP] [Y]", "column 15: second [SEP] (the first is at column 5)"),
])
def test_syntax_errors_name_template_and_column(text, message):
    with pytest.raises(ConfigError) as err:
        parse_template(text, name="p17")
    assert str(err.value).startswith(f"template 'p17' {text!r}, {message}")


def test_empty_template_is_an_error():
    with pytest.raises(ConfigError, match="empty template"):
        parse_template("  ")


# --- template configs -------------------------------------------------------------------------

PROMPT_SETS = {"lama": "[X] is located in [Y] .", "lpaqa": "[X] is in [Y] .",
               "lpaqa_mine": "[X] county , [Y] .", "lpaqa_paraphrase": "[X] in western [Y] .",
               "lpaqa_manual_paraphrase": "[X] is in [Y].", "autoprompt_bert": "[X] kilometres north [Y].",
               "autoprompt_roberta": " [X] kilometers north [Y] .", "pararel": "[X], located in [Y]."}


@pytest.fixture
def prompt_data(tmp_path, monkeypatch):
    """data/lama/prompts/<set>.jsonl with two ranked P17 rows per set (rank 1 = '... (alt)')."""
    folder = tmp_path / "lama" / "prompts"
    folder.mkdir(parents=True)
    for name, text in PROMPT_SETS.items():
        rows = [{"relation": "P17", "template": text.replace("[Y]", "[Y] (alt)"), "rank": 1, "source": "t"},
                {"relation": "P17", "template": text, "rank": 0, "source": "t"},
                {"relation": "P19", "template": "[X] was born in [Y] .", "rank": 0, "source": "t"}]
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    return folder


def _cfg(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text(encoding="utf-8"))


def test_every_template_config_is_documented_and_resolves(prompt_data):
    paths = sorted(CONF.glob("*.yaml"))
    assert {"lama", "lpaqa", "lpaqa_mine", "lpaqa_paraphrase", "autoprompt_bert", "autoprompt_roberta", "pararel",
            "ptuning_lama", "p17_sensitivity"} <= {p.stem for p in paths}
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# Run: python -m bench."), path.name
        for line in lines[1:]:
            if re.match(r"^\s*[A-Za-z_][\w-]*:", line):
                assert " # " in line, f"{path.name}: field without a comment: {line!r}"
        cfg = yaml.safe_load("\n".join(lines))
        assert cfg["name"] == path.stem
        for family in ("mlm", "clm", "seq2seq"):
            found = templates_for(cfg, relation="P17", family=family)
            assert found and all(t.has_target for t in found), path.name
        if cfg.get("verbalizer") is not None:
            assert verbalizer_for(cfg).labels


def test_prompt_set_rank_selection(prompt_data):
    cfg = _cfg("lpaqa_mine")
    assert [str(t) for t in templates_for(cfg, relation="P17")] == ["[X] county , [Y] ."]
    assert templates_for(cfg, relation="P17")[0].name == "lpaqa_mine:P17:r0"
    assert [str(t) for t in templates_for({**cfg, "rank": 1}, relation="P17")] == ["[X] county , [Y] (alt) ."]
    assert [str(t) for t in templates_for({**cfg, "rank": None}, relation="P17")] == [
        "[X] county , [Y] .", "[X] county , [Y] (alt) ."]
    assert templates_for({**cfg, "rank": 5}, relation="P17") == []
    assert templates_for(cfg, relation="P36") == []  # relation the set lacks: the runner lists it
    with pytest.raises(ConfigError, match="pass a relation"):
        templates_for(cfg)


def test_missing_prompt_set_file_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"prompt set 'lama' is not prepared\n  fix: run `make data`"):
        templates_for(_cfg("lama"), relation="P17")


def test_ptuning_config_per_family(prompt_data):
    cfg = _cfg("ptuning_lama")
    assert str(templates_for(cfg, relation="P17", family="mlm")[0]) == "[P:3] [X] [P:3] [Y] [P:3]"
    assert str(templates_for(cfg, relation="P17", family="clm")[0]) == "[P:3] [X] [P:3] [Y]"
    assert str(templates_for({**cfg, "order": "code"}, family="mlm")[0]) == "[P:3] [Y] [P:3] [X] [P:3]"
    manual = templates_for({**cfg, "keep_manual": True}, relation="P17", family="mlm")[0]
    assert str(manual) == "[P:3] [X] [P:3] is located in [Y] . [P:3]"
    assert manual.soft_blocks == (3, 3, 3)


def test_ptuning_text_variants():
    assert ptuning_text([3, 3, 0], order="code", mlm=True) == "[P:3] [Y] [P:3] [X] ."
    assert ptuning_text([3, 3, 0], order="code", mlm=False) == "[P:3] [X] [P:3] [Y]"
    assert ptuning_text([0, 2, 0]) == "[X] [P:2] [Y]"
    with pytest.raises(ConfigError, match="three counts"):
        ptuning_text([3, 3])


def test_p17_sensitivity_ranks():
    cfg = _cfg("p17_sensitivity")
    assert [str(t) for t in templates_for({**cfg, "rank": None})] == [
        "[X] is located in [Y] .", "[X] is located in which country or state? [Y] .",
        "[X] is located in which country? [Y] .", "[X] is located in which country? In [Y] ."]
    assert str(templates_for({**cfg, "rank": 3})[0]) == "[X] is located in which country? In [Y] ."
    with pytest.raises(ConfigError, match="rank 4 out of range"):
        templates_for({**cfg, "rank": 4})


def test_unknown_kind():
    with pytest.raises(ConfigError, match="unknown kind 'magic'"):
        templates_for({"name": "x", "kind": "magic"})
