"""Golden rendered prompts of every LM-BFF Table 1 template and label-word pair, per tokenizer family.

The expected tokens were read off the renderer once and checked by hand against LM-BFF's own
construction (princeton-nlp/LM-BFF ``src/dataset.py``, ``tokenize_multipart_input``): RoBERTa
``<s>`` + sentence + `` It was`` + ``<mask>`` + ``.`` + ``</s>`` with the label words taken after a space
(``Ġgreat``); SNLI's ``*sent-_0*?*mask*,*+sentl_1*`` drops the premise's last character and
lower-cases the hypothesis' first. GPT-2 reads up to the target (its next-token logits score the
leading-space label word); T5 predicts after the sentinel (decoder position 1).
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from test_prompt_tiny import TINY, tiny_tokenizer

from bench.errors import ConfigError
from bench.lmbff.data import LABELS
from bench.paths import REPO_ROOT
from bench.prompts import render, templates_for, verbalizer_for
from bench.superglue.task import check_left_to_right

SST = {"sentence": "a gripping , funny film ."}
SNLI = {"premise": "A man plays a guitar.", "hypothesis": "A man is playing music."}

# (model, template config, rank): (tokens, target positions, label-word tokens in LABELS order)
GOLDEN = {
    ('tiny-roberta', 'lmbff_sst2', 0) : ('<s> a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas <mask> . </s>', [9], ['Ġterrible', 'Ġgreat']),
    ('tiny-roberta', 'lmbff_sst2', 1) : ('<s> a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas <mask> . </s>', [9], ['Ġbad', 'Ġgood']),
    ('tiny-roberta', 'lmbff_sst2', 2) : ('<s> a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas <mask> . </s>', [9], ['Ġdog', 'Ġcat']),
    ('tiny-roberta', 'lmbff_sst2', 3) : ('<s> a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas <mask> . </s>', [9], ['Ġcat', 'Ġdog']),
    ('tiny-roberta', 'lmbff_sst2', 4) : ('<s> a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas <mask> . </s>', [9], ['Ġgreat', 'Ġterrible']),
    ('tiny-roberta', 'lmbff_snli', 0) : ('<s> A Ġman Ġplays Ġa Ġguitar ? <mask> , Ġa Ġman Ġis Ġplaying Ġmusic . </s>', [7], ['ĠNo', 'ĠYes', 'ĠMaybe']),
    ('tiny-roberta', 'lmbff_snli', 1) : ('<s> A Ġman Ġplays Ġa Ġguitar . <mask> , Ġa Ġman Ġis Ġplaying Ġmusic . </s>', [7], ['ĠNo', 'ĠYes', 'ĠMaybe']),
    ('tiny-roberta', 'lmbff_snli', 2) : ('<s> A Ġman Ġplays Ġa Ġguitar ? <mask> Ġa Ġman Ġis Ġplaying Ġmusic . </s>', [7], ['ĠNo', 'ĠYes', 'ĠMaybe']),
    ('tiny-roberta', 'lmbff_snli', 3) : ('<s> A Ġman Ġplays Ġa Ġguitar . ĠA Ġman Ġis Ġplaying Ġmusic . <mask> </s>', [13], ['ĠNo', 'ĠYes', 'ĠMaybe']),
    ('tiny-roberta', 'lmbff_snli', 4) : ('<s> A Ġman Ġis Ġplaying Ġmusic ? <mask> , Ġa Ġman Ġplays Ġa Ġguitar . </s>', [7], ['ĠNo', 'ĠYes', 'ĠMaybe']),
    ('tiny-roberta', 'lmbff_snli', 5) : ('<s> A Ġman Ġplays Ġa Ġguitar ? <mask> , Ġa Ġman Ġis Ġplaying Ġmusic . </s>', [7], ['ĠYes', 'ĠMaybe', 'ĠNo']),
    ('tiny-bert', 'lmbff_sst2', 0) : ('[CLS] a gripping , funny film . It was [MASK] . [SEP]', [9], ['terrible', 'great']),
    ('tiny-bert', 'lmbff_sst2', 1) : ('[CLS] a gripping , funny film . It was [MASK] . [SEP]', [9], ['bad', 'good']),
    ('tiny-bert', 'lmbff_sst2', 2) : ('[CLS] a gripping , funny film . It was [MASK] . [SEP]', [9], ['dog', 'cat']),
    ('tiny-bert', 'lmbff_sst2', 3) : ('[CLS] a gripping , funny film . It was [MASK] . [SEP]', [9], ['cat', 'dog']),
    ('tiny-bert', 'lmbff_sst2', 4) : ('[CLS] a gripping , funny film . It was [MASK] . [SEP]', [9], ['great', 'terrible']),
    ('tiny-bert', 'lmbff_snli', 0) : ('[CLS] A man plays a guitar ? [MASK] , a man is playing music . [SEP]', [7], ['No', 'Yes', 'Maybe']),
    ('tiny-bert', 'lmbff_snli', 1) : ('[CLS] A man plays a guitar . [MASK] , a man is playing music . [SEP]', [7], ['No', 'Yes', 'Maybe']),
    ('tiny-bert', 'lmbff_snli', 2) : ('[CLS] A man plays a guitar ? [MASK] a man is playing music . [SEP]', [7], ['No', 'Yes', 'Maybe']),
    ('tiny-bert', 'lmbff_snli', 3) : ('[CLS] A man plays a guitar . A man is playing music . [MASK] [SEP]', [13], ['No', 'Yes', 'Maybe']),
    ('tiny-bert', 'lmbff_snli', 4) : ('[CLS] A man is playing music ? [MASK] , a man plays a guitar . [SEP]', [7], ['No', 'Yes', 'Maybe']),
    ('tiny-bert', 'lmbff_snli', 5) : ('[CLS] A man plays a guitar ? [MASK] , a man is playing music . [SEP]', [7], ['Yes', 'Maybe', 'No']),
    ('tiny-gpt2', 'lmbff_sst2', 0) : ('a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas', [7], ['Ġterrible', 'Ġgreat']),
    ('tiny-gpt2', 'lmbff_sst2', 1) : ('a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas', [7], ['Ġbad', 'Ġgood']),
    ('tiny-gpt2', 'lmbff_sst2', 2) : ('a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas', [7], ['Ġdog', 'Ġcat']),
    ('tiny-gpt2', 'lmbff_sst2', 3) : ('a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas', [7], ['Ġcat', 'Ġdog']),
    ('tiny-gpt2', 'lmbff_sst2', 4) : ('a Ġgripping Ġ, Ġfunny Ġfilm Ġ. ĠIt Ġwas', [7], ['Ġgreat', 'Ġterrible']),
    ('tiny-gpt2', 'lmbff_snli', 3) : ('A Ġman Ġplays Ġa Ġguitar . ĠA Ġman Ġis Ġplaying Ġmusic .', [11], ['ĠNo', 'ĠYes', 'ĠMaybe']),
    ('tiny-t5', 'lmbff_sst2', 0) : ('▁a ▁gripping ▁ , ▁funny ▁film ▁ . ▁It ▁was <extra_id_0> . </s>', [1], ['▁terrible', '▁great']),
    ('tiny-t5', 'lmbff_sst2', 1) : ('▁a ▁gripping ▁ , ▁funny ▁film ▁ . ▁It ▁was <extra_id_0> . </s>', [1], ['▁bad', '▁good']),
    ('tiny-t5', 'lmbff_sst2', 2) : ('▁a ▁gripping ▁ , ▁funny ▁film ▁ . ▁It ▁was <extra_id_0> . </s>', [1], ['▁dog', '▁cat']),
    ('tiny-t5', 'lmbff_sst2', 3) : ('▁a ▁gripping ▁ , ▁funny ▁film ▁ . ▁It ▁was <extra_id_0> . </s>', [1], ['▁cat', '▁dog']),
    ('tiny-t5', 'lmbff_sst2', 4) : ('▁a ▁gripping ▁ , ▁funny ▁film ▁ . ▁It ▁was <extra_id_0> . </s>', [1], ['▁great', '▁terrible']),
    ('tiny-t5', 'lmbff_snli', 0) : ('▁A ▁man ▁plays ▁a ▁guitar ? <extra_id_0> , ▁a ▁man ▁is ▁playing ▁music . </s>', [1], ['▁No', '▁Yes', '▁Maybe']),
    ('tiny-t5', 'lmbff_snli', 1) : ('▁A ▁man ▁plays ▁a ▁guitar . <extra_id_0> , ▁a ▁man ▁is ▁playing ▁music . </s>', [1], ['▁No', '▁Yes', '▁Maybe']),
    ('tiny-t5', 'lmbff_snli', 2) : ('▁A ▁man ▁plays ▁a ▁guitar ? <extra_id_0> ▁a ▁man ▁is ▁playing ▁music . </s>', [1], ['▁No', '▁Yes', '▁Maybe']),
    ('tiny-t5', 'lmbff_snli', 3) : ('▁A ▁man ▁plays ▁a ▁guitar . ▁A ▁man ▁is ▁playing ▁music . <extra_id_0> </s>', [1], ['▁No', '▁Yes', '▁Maybe']),
    ('tiny-t5', 'lmbff_snli', 4) : ('▁A ▁man ▁is ▁playing ▁music ? <extra_id_0> , ▁a ▁man ▁plays ▁a ▁guitar . </s>', [1], ['▁No', '▁Yes', '▁Maybe']),
    ('tiny-t5', 'lmbff_snli', 5) : ('▁A ▁man ▁plays ▁a ▁guitar ? <extra_id_0> , ▁a ▁man ▁is ▁playing ▁music . </s>', [1], ['▁Yes', '▁Maybe', '▁No']),
}


def _render(name: str, template: str, rank: int):
    cfg = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf" / "template" / f"{template}.yaml"))
    cfg["rank"] = rank
    family, tok = TINY[name], tiny_tokenizer(name)
    (parsed,) = templates_for(cfg, family=family)
    rendered = render(parsed, SST if template == "lmbff_sst2" else SNLI, tok, family)
    words = verbalizer_for(cfg).single_token_ids(tok, prefix_space=rendered.target_prefix_space)
    labels = LABELS["SST-2" if template == "lmbff_sst2" else "SNLI"]
    return (" ".join(tok.convert_ids_to_tokens(rendered.input_ids)), rendered.target_positions,
            [tok.convert_ids_to_tokens(words[label])[0] for label in labels]), parsed


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(GOLDEN), ids=lambda k: f"{k[0]}-{k[1]}-r{k[2]}")
def test_table1_prompt_renders_as_golden(key):
    got, _ = _render(*key)
    assert got == GOLDEN[key]


def test_every_table1_row_has_a_golden_prompt_per_tokenizer_family():
    for name in ("tiny-roberta", "tiny-bert", "tiny-t5"):
        assert {(t, r) for n, t, r in GOLDEN if n == name} == {
            *(("lmbff_sst2", r) for r in range(5)), *(("lmbff_snli", r) for r in range(6))}
    assert {(t, r) for n, t, r in GOLDEN if n == "tiny-gpt2"} == {*(("lmbff_sst2", r) for r in range(5)),
                                                                  ("lmbff_snli", 3)}


@pytest.mark.slow
@pytest.mark.parametrize("rank", [0, 1, 2, 4, 5])
def test_gpt2_refuses_snli_templates_with_text_after_the_mask(rank):
    _, parsed = _render("tiny-roberta", "lmbff_snli", rank)
    with pytest.raises(ConfigError, match="after the target slot"):
        check_left_to_right(parsed)


def test_dropped_last_character_keeps_a_trailing_space_as_lmbff_encodes_it():
    """LM-BFF's *sent-_0* encodes text[:-1] as it is: tokenised "church ." -> "church" "Ġ", then the template's
    "?" (not "Ġ?"); raw "church." -> "church" "?" (tokens written out by hand, each a whole word of the vocab)."""
    from bench.prompts import parse_template

    tok = tiny_tokenizer("tiny-roberta")
    template = parse_template("{premise:trunc,drop_last}? [MASK], {hypothesis:trunc,lcfirst}", name="t")
    tokens = {}
    for premise in ("A man at a church .", "A man at a church."):
        rendered = render(template, {"premise": premise, "hypothesis": "He is here."}, tok, "mlm")
        tokens[premise] = " ".join(tok.convert_ids_to_tokens(rendered.input_ids))
    assert tokens["A man at a church ."] == "<s> A Ġman Ġat Ġa Ġchurch Ġ ? <mask> , Ġhe Ġis Ġhere . </s>"
    assert tokens["A man at a church."] == "<s> A Ġman Ġat Ġa Ġchurch ? <mask> , Ġhe Ġis Ġhere . </s>"
