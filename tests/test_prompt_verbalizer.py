"""Label words -> token ids per tokenizer family; single-token checks; Verbalizer configs."""

from __future__ import annotations

import pytest
from test_prompt_tokenizers import albert_hand, bert_cased, gpt2, minilm, roberta, t5_hand

from bench.errors import ConfigError
from bench.prompts import Verbalizer, single_token_id, target_token_ids


@pytest.mark.parametrize(("make", "prefix_space", "tokens"), [
    (gpt2, True, ["ĠFrance"]), (gpt2, False, ["France"]), (roberta, True, ["ĠFrance"]),
    (bert_cased, True, ["France"]), (bert_cased, False, ["France"]), (minilm, True, ["france"]),
    (albert_hand, True, ["▁france"]), (albert_hand, False, ["france"]), (t5_hand, True, ["▁France"]),
    (t5_hand, False, ["France"]),
])
def test_target_word_forms(make, prefix_space, tokens):
    tok = make()
    assert tok.convert_ids_to_tokens(target_token_ids("France", tok, prefix_space=prefix_space)) == tokens


def test_target_ids_are_the_vocabulary_ids():
    assert target_token_ids("France", gpt2(), prefix_space=True) == [4881]
    assert target_token_ids("France", gpt2(), prefix_space=False) == [28572]
    assert target_token_ids("France", roberta(), prefix_space=True) == [4885]  # GPT-2 id + 4 in our layout
    assert target_token_ids("  France ", minilm(), prefix_space=True) == [2605]


def test_single_token_id_and_its_error():
    assert single_token_id("great", gpt2(), prefix_space=True) == 1049
    with pytest.raises(ConfigError) as err:
        single_token_id("Cantonese", gpt2(), prefix_space=True, method="LAMA probing")
    assert str(err.value) == (
        "label word 'Cantonese' is 3 tokens ['ĠCant', 'ones', 'e'] for GPT2Tokenizer (unnamed, prefix_space=True); "
        "LAMA probing needs single-token label words: pick another word or a multi-token method (PET)")
    with pytest.raises(ConfigError, match="label word '' is empty"):
        single_token_id("", minilm(), prefix_space=True)


def test_verbalizer_from_config():
    verbalizer = Verbalizer.from_config({0: "terrible", 1: ["great", "good"]})
    assert verbalizer.labels == ("0", "1")
    assert verbalizer.label_words == {"0": ("terrible",), "1": ("great", "good")}
    assert verbalizer.single_token_ids(gpt2(), prefix_space=True) == {"0": [7818], "1": [1049, 922]}
    assert verbalizer.token_ids(gpt2(), prefix_space=True)["1"] == [[1049], [922]]
    multi = Verbalizer.from_config({"entailment": "Yes", "contradiction": "Cantonese"})
    with pytest.raises(ConfigError, match="label word 'Cantonese' is 3 tokens"):
        multi.single_token_ids(gpt2(), prefix_space=True)


@pytest.mark.parametrize("bad", [{}, {"a": ""}, {"a": []}, {"a": 3}, ["Yes"]])
def test_verbalizer_config_errors(bad):
    with pytest.raises(ConfigError, match="verbalizer"):
        Verbalizer.from_config(bad)
