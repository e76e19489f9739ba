"""The PET / PT-Fewshot reproduction flags on hand-made cases (the golden files show them on FewGLUE rows)."""

import random

from bench.prompts.render import RenderedPrompt
from bench.superglue.task import _drop_masks


def test_slow_albert_splits_a_digit_before_a_comma(tiny_backbone):
    from bench.prompts.pieces import encode_piece, slow_sentencepiece_ids

    tok = tiny_backbone("tiny-albert").tokenizer
    ids = encode_piece(tok, "on june 20, 2015 by 3, 5", space_before=True)
    assert "▁20," in tok.convert_ids_to_tokens(ids)  # the fast tokenizer keeps the piece
    tokens = tok.convert_ids_to_tokens(slow_sentencepiece_ids(tok, ids))
    assert tokens == ["▁on", "▁june", "▁20", ",", "▁2015", "▁by", "▁3", ",", "▁5"]
    plain = encode_piece(tok, "no digits, here", space_before=True)
    assert slow_sentencepiece_ids(tok, plain) == plain


def test_slow_rule_leaves_wordpiece_alone(tiny_backbone):
    from bench.prompts.pieces import encode_piece, slow_sentencepiece_ids

    tok = tiny_backbone("tiny-bert").tokenizer
    ids = encode_piece(tok, "June 20, 2015", space_before=True)
    assert slow_sentencepiece_ids(tok, ids) == ids


def test_drop_masks_keeps_the_first_masks_and_shifts_what_follows():
    # [CLS] a M M M . [SEP] with a pseudo token after the masks at 5 -> keep 1 mask
    rendered = RenderedPrompt([2, 10, 4, 4, 4, 99, 8, 3], [2, 3, 4], soft_positions=[5], token_type_ids=None)
    out = _drop_masks(rendered, 1)
    assert out.input_ids == [2, 10, 4, 99, 8, 3]
    assert out.target_positions == [2] and out.soft_positions == [3]


def test_pet_pad_draws_follow_one_stream_after_the_scoring_draws():
    # PET: one Random(42) per pattern; scoring the n training examples before training draws first
    n = 5
    rng = random.Random(42)
    stream = [rng.randint(0, 3) for _ in range(2 * n)]
    from types import SimpleNamespace

    from bench.superglue.task import ClassificationTask

    fake = SimpleNamespace(task_cfg={"wsc_pad_draws": "pet"})
    assert ClassificationTask._pet_pad_draws(fake, n) == stream[n:]
    fake.task_cfg = {}
    assert ClassificationTask._pet_pad_draws(fake, n) == [None] * n


def test_copa_train_accuracy_scores_the_mirrored_set_as_pet_does():
    # item J: PET's train_set_before_training scores COPA's 64 mirrored examples, not the 32 originals
    from types import SimpleNamespace

    from bench.superglue import data as sg
    from bench.superglue.pet_stage import train_accuracy

    originals = [sg.Example("COPA", f"train-{i}", {"choice1": "A.", "choice2": "B.", "choice1_lc": "a", "choice2_lc": "b"}, 0, ("a", "b"))
                 for i in range(4)]
    cache = {"train": originals}

    def predict(split, scorer):  # right on every original, wrong on every mirrored copy
        return [ex.label if not ex.uid.endswith("-m") else 1 - ex.label for ex in cache[split]]

    task = SimpleNamespace(task="COPA", task_cfg={}, _examples=cache, examples=cache.__getitem__, predict=predict)
    assert train_accuracy(task, None) == 0.5  # 4 of 8
    task.task_cfg = {"mirror_copa": False}
    assert train_accuracy(task, None) == 1.0


def _parts_template():
    from bench.prompts.template import parse_template, with_parts

    text = "{a:trunc} question: {b} answer: [MASK] ."
    return with_parts(parse_template(text), ["{a:trunc}", " question: ", "{b}", " answer:", "[MASK]."], "test")


def test_pet_parts_on_roberta_as_pets_slow_tokenizer(tiny_backbone):
    # PET on RoBERTa (transformers 3.0.2, add_prefix_space=True) encodes each part on its own: a space before a
    # part that lacks one, a part's trailing space a token of its own, text right after the mask unspaced
    from bench.prompts import render

    tok = tiny_backbone("tiny-roberta").tokenizer
    example = {"a": "Ghost story", "b": "Is it true"}
    pet = render(_parts_template(), example, tok, "mlm", tokenization="pet_slow")
    assert pet.tokens(tok) == ["<s>", "ĠGhost", "Ġstory", "Ġquestion", ":", "Ġ", "ĠIs", "Ġit", "Ġtrue",
                               "Ġanswer", ":", "<mask>", ".", "</s>"]
    assert pet.target_positions == [11] and pet.target_prefix_space
    running = render(_parts_template(), example, tok, "mlm", tokenization="fast")  # the suite's running text
    assert running.tokens(tok) == ["<s>", "Ghost", "Ġstory", "Ġquestion", ":", "ĠIs", "Ġit", "Ġtrue",
                                   "Ġanswer", ":", "<mask>", "Ġ.", "</s>"]
    cut = render(_parts_template(), example, tok, "mlm", tokenization="pet_slow", max_length=13, truncation="pet")
    assert cut.tokens(tok)[:3] == ["<s>", "ĠGhost", "Ġquestion"]  # the shortenable part loses its last token


def test_pet_parts_leave_albert_alone(tiny_backbone):
    from bench.prompts import render

    tok = tiny_backbone("tiny-albert").tokenizer
    example = {"a": "Ghost story", "b": "Is it true"}
    slow = render(_parts_template(), example, tok, "mlm", tokenization="pet_slow")
    assert slow.tokens(tok)[:4] == ["[CLS]", "▁ghost", "▁story", "▁question"]  # SentencePiece: running text, no parts
    assert slow.input_ids == render(_parts_template(), example, tok, "mlm", tokenization="fast").input_ids


def test_pet_parts_must_spell_the_template_and_exist(tiny_backbone):
    import pytest

    from bench.errors import ConfigError
    from bench.prompts import render
    from bench.prompts.template import parse_template, with_parts

    with pytest.raises(ConfigError, match="spell"):
        with_parts(parse_template("{a} question: [MASK]"), ["{a}", " answer: ", "[MASK]"], "test")
    tok = tiny_backbone("tiny-roberta").tokenizer
    with pytest.raises(ConfigError, match="no PET parts"):
        render(parse_template("{a} question: [MASK]"), {"a": "x"}, tok, "mlm", tokenization="pet_slow")


def test_pt_fewshot_pseudo_token_part_on_roberta(tiny_backbone):
    # PT-Fewshot's pseudo token is a part of its own ("the", block_flag 1): one position, the next part spaced
    from bench.prompts import render
    from bench.prompts.template import parse_template, with_parts

    tok = tiny_backbone("tiny-roberta").tokenizer
    template = with_parts(parse_template("{a} [P] answer: [MASK]"), ["{a}", "[P]", "answer:", "[MASK]"], "test")
    out = render(template, {"a": "Ghost"}, tok, "mlm", tokenization="pet_slow", soft_token_id=tok.unk_token_id)
    assert out.soft_positions == [2]
    tokens = out.tokens(tok)
    assert tokens[:2] == ["<s>", "ĠGhost"] and tokens[3:] == ["Ġanswer", ":", "<mask>", "</s>"]


def test_every_shipped_template_parts_spell_their_pattern():
    """conf/template's `parts:` are checked strictly here; at run time stale parts of an overridden text are left off."""
    import yaml

    from bench.paths import REPO_ROOT
    from bench.prompts.template import parse_template, with_parts

    checked = 0
    for path in sorted((REPO_ROOT / "conf/template").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        texts = cfg.get("texts") or ([cfg["text"]] if cfg.get("text") else [])
        by_id = {int(k): v for k, v in texts.items()} if isinstance(texts, dict) else dict(enumerate(texts))
        for rank, parts in (cfg.get("parts") or {}).items():
            with_parts(parse_template(str(by_id[int(rank)])), parts, f"{path.name} parts[{rank}]")
            checked += 1
    assert checked >= 30  # PET's patterns of eight tasks and PT-Fewshot's templates


def test_an_overridden_text_drops_its_stale_parts(tiny_backbone):
    import pytest

    from bench.errors import ConfigError
    from bench.prompts import render, templates_for

    cfg = {"name": "t", "kind": "fixed", "texts": ["{a} ? [SEP] [MASK] , {b}"],
           "parts": {0: ["{a}", " question: ", "[SEP]", "[MASK]", "{b}"]}}
    (template,) = templates_for(cfg)
    assert template.parts is None
    example = {"a": "Ghost story", "b": "Is it true"}
    with pytest.raises(ConfigError, match="no PET parts"):
        render(template, example, tiny_backbone("tiny-roberta").tokenizer, "mlm", tokenization="pet_slow")
    albert = render(template, example, tiny_backbone("tiny-albert").tokenizer, "mlm", tokenization="pet_slow")
    assert albert.input_ids


def _sep_template():
    from bench.prompts.template import parse_template, with_parts

    return with_parts(parse_template("{a:trunc} [SEP] {b:trunc} ? answer: [MASK]"),
                      ["{a:trunc}", "[SEP]", "{b:trunc}", "?", " answer: ", "[MASK]"], "test")


def test_sep_as_text_is_one_sequence_as_pt_fewshot_writes_it(tiny_backbone):
    # task.sep=text: PT-Fewshot's "[SEP]" is text inside its one sequence (CbPVP / WicPVP parts_a, parts_b empty)
    from bench.prompts import render

    example = {"a": "one two three four five six", "b": "seven eight"}
    bert = tiny_backbone("tiny-bert").tokenizer
    words = ["one", "two", "three", "four", "five", "six", "[SEP]", "seven", "eight", "?", "answer", ":", "[MASK]"]
    pair = render(_sep_template(), example, bert, "mlm", tokenization="pet_slow")
    text = render(_sep_template(), example, bert, "mlm", tokenization="pet_slow", sep="text")
    assert pair.tokens(bert) == text.tokens(bert) == ["[CLS]", *words, "[SEP]"]  # the same ids on BERT ...
    assert pair.token_type_ids == [0] * 8 + [1] * 7 and text.token_type_ids is None  # ... but no type-1 segment
    # truncation: one text, so the last shortenable part loses first (PVP.truncate with empty parts_b)
    cut = render(_sep_template(), example, bert, "mlm", tokenization="pet_slow", sep="text", max_length=12,
                 truncation="pet")
    assert cut.tokens(bert) == ["[CLS]", "one", "two", "three", "four", "five", "[SEP]", "?", "answer", ":",
                                "[MASK]", "[SEP]"]
    cut_pair = render(_sep_template(), example, bert, "mlm", tokenization="pet_slow", max_length=12, truncation="pet")
    assert cut_pair.tokens(bert)[1:6] == ["one", "two", "three", "[SEP]", "seven"]  # a pair: the longer text loses
    # RoBERTa: the part "[SEP]" with PET's prefix space is BPE text, not the pair separator </s></s>
    roberta = tiny_backbone("tiny-roberta").tokenizer
    out = render(_sep_template(), example, roberta, "mlm", tokenization="pet_slow", sep="text")
    assert out.tokens(roberta) == ["<s>", "Ġone", "Ġtwo", "Ġthree", "Ġfour", "Ġfive", "Ġsix", "Ġ[", "SE", "P", "]",
                                   "Ġseven", "Ġeight", "Ġ?", "Ġanswer", ":", "Ġ", "<mask>", "</s>"]
    assert out.target_positions == [17] and out.token_type_ids is None
    running = render(_sep_template(), example, roberta, "mlm", tokenization="fast", sep="text")
    assert running.tokens(roberta)[5:11] == ["Ġfive", "Ġsix", "Ġ[", "SE", "P", "]"]  # running text: spaced too


def test_sep_mode_is_checked(tiny_backbone):
    import pytest

    from bench.errors import ConfigError
    from bench.prompts import render

    with pytest.raises(ConfigError, match="sep 'literal'"):
        render(_sep_template(), {"a": "x", "b": "y"}, tiny_backbone("tiny-bert").tokenizer, "mlm", sep="literal")


def test_slow_bert_keeps_format_characters_as_transformers_3_0_2(tiny_backbone):
    # 3.0.2's BasicTokenizer never cleans the text: U+202C / U+00AD stay in their word, which WordPiece cannot
    # cover ([UNK]); the fast normalizer (clean_text) drops them. Punctuation splits and special tokens as usual.
    from bench.prompts.slow_tokenizers import slow_basic_words, slow_wordpiece_ids

    tok = tiny_backbone("tiny-bert").tokenizer
    text = "the end\u202c city, there\u00ad [SEP] (and)"
    assert slow_basic_words(text, lowercase=False) == ["the", "end\u202c", "city", ",", "there\u00ad", "[", "SEP", "]",
                                                       "(", "and", ")"]
    want = ["the", "[UNK]", "city", ",", "[UNK]", "[SEP]", "(", "and", ")"]
    assert slow_wordpiece_ids(tok, text) == tok.convert_tokens_to_ids(want)
    assert tok.convert_ids_to_tokens(tok.encode(text, add_special_tokens=False))[:2] == ["the", "end"]  # fast drops it
    # uncased vocabularies: lower case, then accents stripped (NFD, combining marks dropped); CJK spaced
    assert slow_basic_words("Café\u4e2d文 Ünïcode", lowercase=True) == ["cafe", "\u4e2d", "文", "unicode"]
    assert slow_basic_words("Café", lowercase=False) == ["Café"]
