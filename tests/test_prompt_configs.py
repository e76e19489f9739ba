"""SuperGLUE (PET, P-Tuning FewGLUE) and LM-BFF template configs: patterns, verbalizers, renderings."""

from __future__ import annotations

import pytest
import yaml
from test_prompt_tokenizers import minilm, roberta

from bench.paths import REPO_ROOT
from bench.prompts import render, templates_for, verbalizer_for

CONF = REPO_ROOT / "conf" / "template"
# config -> (pattern ids, labels of the verbalizer or None, fields every pattern may use)
EXPECTED = {
    "pet_boolq": ([0, 1, 2, 3, 4, 5], {"False", "True"}), "pet_cb": ([0, 1, 2, 3, 4], {"entailment", "contradiction", "neutral"}),
    "pet_rte": ([0, 1, 2, 3, 4], {"entailment", "not_entailment"}), "pet_copa": ([0, 1], None),
    "pet_wsc": ([0, 1, 2], None), "pet_wic": ([0, 1, 2], {"False", "True"}), "pet_multirc": ([0, 1, 2, 3], {"0", "1"}),
    "pet_record": ([0], None), "ptuning_boolq": ([1], {"False", "True"}),
    "ptuning_cb": ([1], {"entailment", "contradiction", "neutral"}), "ptuning_copa": ([1], None),
    "ptuning_rte": ([1], {"entailment", "not_entailment"}), "ptuning_wic": ([1, 2, 3, 4], {"False", "True"}),
    "ptuning_wsc": ([1, 2], None), "ptuning_multirc": ([1], {"0", "1"}),
    "lmbff_sst2": ([0, 1, 2, 3, 4], {"0", "1"}),  # Table 1: one template, five label-word pairs
    "lmbff_snli": ([0, 1, 2, 3, 4, 5], {"contradiction", "entailment", "neutral"}),  # five templates + Maybe/No/Yes
}
FIELDS = {"boolq": {"passage", "question"}, "cb": {"premise", "hypothesis", "hypothesis_bare"},
          "rte": {"premise", "hypothesis", "hypothesis_bare"}, "wic": {"word", "sentence1", "sentence2"},
          "copa": {"choice1_lc", "choice2_lc", "premise_bare", "connective", "joiner"}, "wsc": {"text_marked", "pronoun"},
          "multirc": {"passage", "question", "answer"}, "record": {"passage", "query_left", "query_right"},
          "sst2": {"sentence"}, "snli": {"premise", "hypothesis"}}


def _cfg(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_patterns_and_verbalizers(name):
    ids, labels = EXPECTED[name]
    cfg = _cfg(name)
    templates = templates_for({**cfg, "rank": None})
    assert [t.name for t in templates] == [f"{name}:r{i}" for i in ids]
    fields = FIELDS[name.split("_", 1)[1]]
    for template in templates:
        assert template.has_target and set(template.fields) <= fields, (template.name, template.fields)
    for pattern in ids:
        verbalizer = verbalizer_for(cfg, rank=pattern)
        assert (None if verbalizer is None else set(verbalizer.labels)) == labels


def test_pattern_specific_verbalizers():
    cfg = _cfg("pet_boolq")
    assert [verbalizer_for(cfg, rank=i).label_words["True"] for i in range(6)] == [
        ("Yes",), ("true",), ("Yes",), ("true",), ("Yes",), ("true",)]
    assert verbalizer_for({**_cfg("pet_wic"), "rank": 2}).label_words == {"False": ("2",), "True": ("b",)}
    assert verbalizer_for(_cfg("pet_cb"), rank=4).label_words["neutral"] == ("neither",)


def test_pet_rte_pair_pattern_on_bert():
    tok = minilm()
    template = templates_for({**_cfg("pet_rte"), "rank": 1})[0]
    example = {"premise": "It rains.", "hypothesis": "It is wet.", "hypothesis_bare": "It is wet"}
    prompt = render(template, example, tok, "mlm")
    assert prompt.tokens(tok) == ["[CLS]", "it", "is", "wet", "?", "[SEP]", "[MASK]", ",", "it", "rains", ".", "[SEP]"]
    assert prompt.token_type_ids == [0] * 6 + [1] * 6 and prompt.target_positions == [6]
    roberta_tokens = render(template, example, roberta(), "mlm").tokens(roberta())
    assert roberta_tokens == ["<s>", "It", "Ġis", "Ġwet", "Ġ?", "</s>", "</s>", "<mask>", "Ġ,", "ĠIt", "Ġrains", ".", "</s>"]


def test_lmbff_sst2_on_roberta():
    tok = roberta()
    prompt = render(templates_for(_cfg("lmbff_sst2"))[0], {"sentence": "a gorgeous movie ."}, tok, "mlm")
    assert prompt.tokens(tok) == ["<s>", "a", "Ġgorgeous", "Ġmovie", "Ġ.", "ĠIt", "Ġwas", "<mask>", ".", "</s>"]
    words = verbalizer_for(_cfg("lmbff_sst2")).single_token_ids(tok, prefix_space=prompt.target_prefix_space)
    assert {label: tok.convert_ids_to_tokens(ids) for label, ids in words.items()} == {
        "0": ["Ġterrible"], "1": ["Ġgreat"]}


def test_lmbff_snli_on_roberta():
    tok = roberta()
    example = {"premise": "A man plays a guitar.", "hypothesis": "The man is playing music."}
    prompt = render(templates_for(_cfg("lmbff_snli"))[0], example, tok, "mlm")
    assert prompt.tokens(tok) == ["<s>", "A", "Ġman", "Ġplays", "Ġa", "Ġguitar", "?", "<mask>", ",", "Ġthe", "Ġman",
                                  "Ġis", "Ġplaying", "Ġmusic", ".", "</s>"]
    assert prompt.target_prefix_space is True  # LM-BFF's label words are ' ' + word


def test_ptuning_fewglue_soft_positions():
    tok = minilm()
    template = templates_for({**_cfg("ptuning_wic"), "rank": 4})[0]
    prompt = render(template, {"sentence1": "a bank", "sentence2": "the bank", "word": "bank"}, tok, "mlm",
                    soft_token_id=1)
    assert prompt.tokens(tok) == ["[CLS]", "[unused0]", "a", "bank", "[SEP]", "the", "bank", "[unused0]", "*", "bank",
                                  "*", "?", "[unused0]", "[MASK]", "[unused0]", "[SEP]"]
    assert prompt.soft_positions == [1, 7, 12, 14] and prompt.target_positions == [13]


def test_copa_connective_field():
    tok = roberta()
    template = templates_for(_cfg("pet_copa"))[0]
    example = {"choice1_lc": "the sun rose", "choice2_lc": "it rained", "premise_bare": "The grass was wet",
               "connective": " because"}
    tokens = render(template, example, tok, "mlm", num_target_tokens=2).tokens(tok)
    assert tokens == ["<s>", '"', "Ġthe", "Ġsun", "Ġrose", 'Ġ"', "Ġor", 'Ġ"', "Ġit", "Ġr", "ained", 'Ġ"', "?", "ĠThe",
                      "Ġgrass", "Ġwas", "Ġwet", "Ġbecause", "<mask>", "<mask>", "Ġ.", "</s>"]
    tokens = render(template, {**example, "connective": ", so"}, tok, "mlm").tokens(tok)
    # ", so" is its own part, as PET encodes it (tests/golden/parity/fewglue/inputs_tiny-roberta_COPA: "Ġ," "Ġso")
    assert tokens[-6:] == ["Ġwet", "Ġ,", "Ġso", "<mask>", "Ġ.", "</s>"]
