"""Rendering templates per tokenizer family: golden token lists, whole-string equivalence, soft
tokens, truncation, CLM and seq2seq targets."""

from __future__ import annotations

import copy
import json
from functools import lru_cache

import pytest
from test_prompt_tokenizers import (
    albert_hand,
    albert_trained,
    bert_cased,
    gpt2,
    minilm,
    roberta,
    shared,
    t5_hand,
    t5_trained,
)
from tokenizers import pre_tokenizers

from bench.errors import ConfigError
from bench.prompts import parse_template, render, target_token_ids

LOCATED = parse_template("[X] is located in [Y] .")
PARIS = {"x": "Paris"}


def _tokens(tok, text, family, example=PARIS, **kw):
    prompt = render(parse_template(text), example, tok, family, **kw)
    return prompt.tokens(tok), prompt


# --- golden renderings ---------------------------------------------------------------------------

def test_gpt2_golden_drops_the_tail_and_scores_the_last_token():
    tokens, p = _tokens(gpt2(), "[X] is located in [Y] .", "clm")
    assert tokens == ["Paris", "Ġis", "Ġlocated", "Ġin"] and p.input_ids == [40313, 318, 5140, 287]
    assert (p.target_positions, p.target_prefix_space, p.decoder_input_ids) == ([3], True, None)
    assert gpt2().convert_ids_to_tokens(target_token_ids("France", gpt2(), prefix_space=True)) == ["ĠFrance"]


def test_gpt2_trailing_space_before_target_moves_into_the_target_word():
    # P-Tuning's use_original_template path tokenises "... located in " and ends in a stray "Ġ"
    tokens, p = _tokens(gpt2(), "[X] is located in   [Y]", "clm")
    assert tokens == ["Paris", "Ġis", "Ġlocated", "Ġin"] and p.target_prefix_space is True
    tokens, p = _tokens(gpt2(), "[X] (born [Y]).", "clm")
    assert tokens == ["Paris", "Ġ(", "born"] and p.target_prefix_space is True
    tokens, p = _tokens(gpt2(), "[X] is a city of ([Y]).", "clm")
    assert tokens == ["Paris", "Ġis", "Ġa", "Ġcity", "Ġof", "Ġ("] and p.target_prefix_space is False
    assert gpt2().convert_ids_to_tokens(target_token_ids("1950", gpt2(), prefix_space=False)) == ["1950"]


def test_gpt2_template_starting_with_target_gets_bos():
    tokens, p = _tokens(gpt2(), "[Y] league [X] .", "clm")
    assert tokens == ["<|endoftext|>"] and p.target_positions == [0] and p.target_prefix_space is False
    tokens, p = _tokens(gpt2(), "{a} [Y] .", "clm", example={"a": " "})  # a field that renders to nothing
    assert tokens == ["<|endoftext|>"] and p.target_positions == [0]


def test_roberta_golden():
    tokens, p = _tokens(roberta(), "[X] is located in [Y] .", "mlm")
    assert tokens == ["<s>", "Paris", "Ġis", "Ġlocated", "Ġin", "<mask>", "Ġ.", "</s>"]
    assert p.input_ids == [0, 40317, 322, 5144, 291, 50261, 768, 2] and p.target_positions == [5]
    tokens, p = _tokens(roberta(), "[X] is located in which country? In [Y].", "mlm")
    assert tokens == ["<s>", "Paris", "Ġis", "Ġlocated", "Ġin", "Ġwhich", "Ġcountry", "?", "ĠIn", "<mask>", ".", "</s>"]
    assert p.target_positions == [9]
    tokens, _ = _tokens(roberta(), "[X] (born [Y]).", "mlm")
    assert tokens == ["<s>", "Paris", "Ġ(", "born", "<mask>", ").", "</s>"]


def test_bert_cased_golden():
    tokens, p = _tokens(bert_cased(), "[X] is located in [Y] .", "mlm")
    assert tokens == ["[CLS]", "Paris", "is", "located", "in", "[MASK]", ".", "[SEP]"]
    assert p.input_ids == [2, 5, 6, 7, 8, 4, 26, 3] and p.target_positions == [5]
    tokens, _ = _tokens(bert_cased(), "[X] (born [Y]).", "mlm", example={"x": "Berlin"})
    assert tokens == ["[CLS]", "Be", "##rlin", "(", "born", "[MASK]", ")", ".", "[SEP]"]


def test_minilm_uncased_golden():
    tokens, p = _tokens(minilm(), "[X] is located in [Y] .", "mlm")
    assert tokens == ["[CLS]", "paris", "is", "located", "in", "[MASK]", ".", "[SEP]"]
    assert p.input_ids == [101, 3000, 2003, 2284, 1999, 103, 1012, 102]


def test_albert_golden_lowercases_and_adds_no_spurious_space_marker():
    tokens, _ = _tokens(albert_hand(), "[X] is located in [Y] .", "mlm")
    assert tokens == ["[CLS]", "▁paris", "▁is", "▁located", "▁in", "[MASK]", "▁.", "[SEP]"]
    tokens, p = _tokens(albert_hand(), "[X] (born [Y]).", "mlm")
    assert tokens == ["[CLS]", "▁paris", "▁(", "born", "[MASK]", ")", ".", "[SEP]"]  # the tokenizer alone: "▁", ")"
    tokens, p = _tokens(albert_hand(), "[X] is in ([Y]).", "mlm")
    assert tokens == ["[CLS]", "▁paris", "▁is", "▁in", "▁(", "[MASK]", ")", ".", "[SEP]"]
    assert p.target_prefix_space is False
    assert albert_hand().convert_ids_to_tokens(target_token_ids("France", albert_hand(), prefix_space=False)) == ["france"]
    tokens, _ = _tokens(albert_hand(), "[X] is located in which country? In [Y].", "mlm")
    assert tokens[-3:] == ["[MASK]", ".", "[SEP]"]
    assert albert_hand().convert_ids_to_tokens(target_token_ids("France", albert_hand(), prefix_space=True)) == ["▁france"]


def test_t5_golden_sentinel_and_decoder():
    tokens, p = _tokens(t5_hand(), "[X] is located in [Y] .", "seq2seq")
    assert tokens == ["▁Paris", "▁is", "▁located", "▁in", "<extra_id_0>", "▁.", "</s>"]
    sentinel = t5_hand().convert_tokens_to_ids("<extra_id_0>")
    assert p.decoder_input_ids == [0, sentinel] and p.target_positions == [1]
    tokens, _ = _tokens(t5_hand(), "[X] (born [Y]).", "seq2seq")
    assert tokens == ["▁Paris", "▁(", "born", "<extra_id_0>", ")", ".", "</s>"]
    assert t5_hand().convert_ids_to_tokens(target_token_ids("France", t5_hand(), prefix_space=True)) == ["▁France"]


def test_prefix_space_tokenizer_keeps_attached_pieces_attached():
    tok = gpt2(add_prefix_space=True)
    tokens, _ = _tokens(tok, "[X] is located in [Y] .", "clm")
    assert tokens == ["ĠParis", "Ġis", "Ġlocated", "Ġin"]  # as the whole string gives with this tokenizer
    tokens, p = _tokens(tok, "[P:2][X] is [Y]", "clm")
    assert tokens[2:] == ["Paris", "Ġis"] and p.soft_positions == [0, 1]
    assert tok.convert_ids_to_tokens(target_token_ids("France", tok, prefix_space=False)) == ["France"]


def test_multi_token_target_expands_masks():
    tokens, p = _tokens(roberta(), "[X] is located in [Y] .", "mlm", num_target_tokens=3)
    assert tokens == ["<s>", "Paris", "Ġis", "Ġlocated", "Ġin", "<mask>", "<mask>", "<mask>", "Ġ.", "</s>"]
    assert p.target_positions == [5, 6, 7]


# --- soft tokens and anchors -------------------------------------------------------------------

def test_ptuning_333_on_masked_lm():
    tok = bert_cased()
    tokens, p = _tokens(tok, "[P:3] [X] [P:3] [Y] [P:3]", "mlm", soft_token_id=0)
    assert p.input_ids == [2, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3]
    assert p.soft_positions == [1, 2, 3, 5, 6, 7, 9, 10, 11] and p.target_positions == [8]
    tokens, p = _tokens(roberta(), "[P:3] [X] [P:3] [Y] [P:3]", "mlm")
    assert tokens == ["<s>", *["<unk>"] * 3, "ĠParis", *["<unk>"] * 3, "<mask>", *["<unk>"] * 3, "</s>"]


def test_ptuning_330_on_gpt2():
    tokens, p = _tokens(gpt2(), "[P:3] [X] [P:3] [Y]", "clm", soft_token_id=50256)
    assert tokens == ["<|endoftext|>"] * 3 + ["ĠParis"] + ["<|endoftext|>"] * 3
    assert p.soft_positions == [0, 1, 2, 4, 5, 6] and p.target_positions == [6]
    # (3,3,3) on a causal LM: the block after [Y] is dropped with the rest of the tail
    _, p = _tokens(gpt2(), "[P:3] [X] [P:3] [Y] [P:3]", "clm")
    assert p.soft_positions == [0, 1, 2, 4, 5, 6] and p.target_positions == [6]


def test_anchor_positions():
    tokens, p = _tokens(roberta(), "{p} [P:2] [A:?] [P:1] [MASK] , {h}", "mlm", example={"p": "It rains", "h": "wet"})
    assert tokens == ["<s>", "It", "Ġrains", "<unk>", "<unk>", "Ġ?", "<unk>", "<mask>", "Ġ,", "Ġwet", "</s>"]
    assert (p.anchor_positions, p.soft_positions, p.target_positions) == ([5], [3, 4, 6], [7])


def test_t5_soft_tokens_and_sentinel():
    tokens, p = _tokens(t5_hand(), "[P:2] [X] [Y] .", "seq2seq", soft_token_id=3)
    assert tokens == ["▁", "▁", "▁Paris", "<extra_id_0>", "▁.", "</s>"] and p.soft_positions == [0, 1]


def test_pair_token_types_only_where_the_model_uses_them():
    template = parse_template("{a} ? [SEP] [MASK] , {b}")
    example = {"a": "It rains", "b": "wet"}
    p = render(template, example, bert_cased(), "mlm")
    assert p.tokens(bert_cased()) == ["[CLS]", "[UNK]", "[UNK]", "?", "[SEP]", "[MASK]", ",", "[UNK]", "[SEP]"]
    assert p.token_type_ids == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    p = render(template, example, albert_hand(), "mlm")
    assert p.token_type_ids is not None and p.token_type_ids[p.target_positions[0]] == 1
    assert render(template, example, roberta(), "mlm").token_type_ids is None
    p = render(template, example, gpt2(), "clm")
    assert p.tokens(gpt2()) == ["It", "Ġrains", "Ġ?"] and p.token_type_ids is None
    assert render(LOCATED, PARIS, bert_cased(), "mlm").token_type_ids is None


# --- truncation ----------------------------------------------------------------------------------

def test_trunc_field_is_shortened_from_the_end_longest_first():
    tok = minilm()
    template = parse_template("{a:trunc} ? [MASK] , {b:trunc}")
    example = {"a": "one two three four five six", "b": "red green"}
    full = render(template, example, tok, "mlm")
    assert len(full.input_ids) == 13
    p = render(template, example, tok, "mlm", max_length=10)
    assert p.tokens(tok) == ["[CLS]", "one", "two", "three", "?", "[MASK]", ",", "red", "green", "[SEP]"]
    p = render(template, example, tok, "mlm", max_length=8)  # a: 6 -> 2 tokens, then the tie goes to the later field
    assert p.tokens(tok) == ["[CLS]", "one", "two", "?", "[MASK]", ",", "red", "[SEP]"]
    assert p.target_positions == [4]


def test_untruncatable_template_that_does_not_fit_is_an_error():
    with pytest.raises(ConfigError, match=r"does not fit max_length=5: 3 tokens over"):
        render(LOCATED, PARIS, minilm(), "mlm", max_length=5)


# --- errors ---------------------------------------------------------------------------------------

def test_render_errors():
    with pytest.raises(ConfigError, match="unknown model family 'encoder'"):
        render(LOCATED, PARIS, minilm(), "encoder")
    with pytest.raises(ConfigError, match="no mask token: family 'mlm' needs one"):
        render(LOCATED, PARIS, gpt2(), "mlm")
    with pytest.raises(ConfigError, match="no <extra_id_0> sentinel"):
        render(LOCATED, PARIS, minilm(), "seq2seq")
    with pytest.raises(ConfigError, match=r"field \{x\} is not in the example \(keys: \['sub_label'\]\)"):
        render(LOCATED, {"sub_label": "Paris"}, minilm(), "mlm")
    with pytest.raises(ConfigError, match="has no target slot"):
        render(parse_template("[X] is nice ."), PARIS, minilm(), "mlm")


# --- segment-wise rendering == tokenising the whole filled string ---------------------------------

@lru_cache(maxsize=1)
def lama_cases() -> list[tuple[str, str, str]]:
    """(template, subject, object): every LAMA manual template, Google-RE's, ParaRel's, P17's."""
    lama = shared("lama")
    templates = [json.loads(line)["template"] for line in (lama / "relations.jsonl").read_text().splitlines()]
    templates += ["[X] was born in [Y] .", "[X] (born [Y]).", "[X] died in [Y] .",
                  "[X] is located in which country? In [Y] .", "[X] is located in which country? In [Y]."]
    for path in sorted((lama / "pararel" / "pattern_data" / "graphs_json").glob("P*.jsonl")):
        templates += [json.loads(line)["pattern"] for line in path.read_text().splitlines()]
    facts = []
    for path in sorted((lama / "fact-retrieval" / "original").glob("P*/dev.jsonl")):
        for line in path.read_text().splitlines()[:3]:
            row = json.loads(line)
            facts.append((row["sub_label"], row["obj_label"]))
    return [(t, *facts[(7 * i + k) % len(facts)]) for i, t in enumerate(templates) for k in range(2)]


def _first_scheme(tok):
    """The tokenizer with Metaspace(prepend_scheme="first"): text glued to a special token gets no "▁"."""
    tok = copy.deepcopy(tok)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    return tok


MASK_STRING_CASES = {
    "roberta": (roberta, "mlm"), "minilm": (minilm, "mlm"), "bert_cased": (bert_cased, "mlm"),
    "albert_first": (lambda: _first_scheme(albert_trained()), "mlm"), "gpt2": (gpt2, "clm"),
    "t5": (t5_trained, "seq2seq"),
}


@pytest.mark.parametrize("name", sorted(MASK_STRING_CASES))
def test_rendering_equals_whole_string_with_mask(name):
    make, family = MASK_STRING_CASES[name]
    tok = make()
    mask = {"mlm": tok.mask_token, "seq2seq": "<extra_id_0>", "clm": None}[family]
    cases = lama_cases()
    assert len(cases) > 700
    for text, subject, _ in cases:
        template = parse_template(text)
        got = render(template, {"x": subject}, tok, family).input_ids
        if family == "clm":
            prefix = text.split("[Y]")[0].replace("[X]", subject).rstrip()
            if not prefix:
                continue
            expected = tok.encode(prefix, add_special_tokens=False)
        else:
            after = text.split("[Y]")[1]
            if family == "seq2seq" and after and not after[0].isspace():
                continue  # T5 as shipped writes "▁." after the sentinel; we render "." (running text)
            expected = tok.encode(template.fill({"x": subject}, target=mask).rstrip())
        assert got == expected, (text, subject, tok.convert_ids_to_tokens(got), tok.convert_ids_to_tokens(expected))


NATURAL_CASES = {**MASK_STRING_CASES, "albert": (albert_trained, "mlm")}


@pytest.mark.parametrize("name", sorted(NATURAL_CASES))
def test_rendering_with_target_tokens_equals_the_natural_sentence(name):
    """Put the object's tokens (target_token_ids with the rendered prefix space) where the target is."""
    make, family = NATURAL_CASES[name]
    tok = make()
    sentinel = tok.convert_tokens_to_ids("<extra_id_0>") if family == "seq2seq" else None
    for text, subject, obj in lama_cases():
        template = parse_template(text)
        plain = render(template, {"x": subject}, tok, family)
        target = target_token_ids(obj, tok, prefix_space=plain.target_prefix_space)
        prompt = render(template, {"x": subject}, tok, family, num_target_tokens=len(target))
        ids = list(prompt.input_ids)
        sentence = template.fill({"x": subject}, target=obj).rstrip()
        if family == "clm":
            if ids and ids[0] == tok.bos_token_id:
                continue
            expected = tok.encode(sentence, add_special_tokens=False)[: len(ids) + len(target)]
            ids += target
        else:
            at = ids.index(sentinel) if sentinel is not None else prompt.target_positions[0]
            width = 1 if sentinel is not None else len(target)
            ids[at : at + width] = target
            expected = tok.encode(sentence)
        assert ids == expected, (text, subject, obj, tok.convert_ids_to_tokens(ids), tok.convert_ids_to_tokens(expected))
