"""LM-BFF's automatic search (bench.lmbff.auto_labels, auto_templates): checked against plain recomputations.

- the label-word candidates on the tiny RoBERTa equal a loop that scores every vocabulary token by its mean
  logit at the mask (the model called one example at a time) and every mapping by counting correct argmaxes;
- LM-BFF's template notation maps to the suite's template language as hand-written here;
- the T5 input of one example equals ids written out by hand from the tokenizer's pieces.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.errors import ConfigError
from bench.lmbff.auto_labels import WORD_START, likely_words, mask_logits, search_mappings
from bench.lmbff.auto_templates import FORMATS, suite_text, t5_input


@pytest.fixture(scope="module")
def tiny_task():
    from bench.backbones.loading import load_backbone
    from bench.methods.pet import PatternTuning
    from bench.parity.lmbff_suite import _yaml, make_task

    torch.set_num_threads(1)
    backbone = load_backbone(_yaml("model", "tiny-roberta"), device="cpu", dtype=torch.float32, models_dir=None)
    method = PatternTuning()
    method.setup(backbone)
    return make_task("SST-2", method, seed=13, backbone=backbone), backbone


def test_mask_logits_equal_one_example_at_a_time(tiny_task):
    task, backbone = tiny_task
    logits, labels = mask_logits(task, backbone, batch_size=5)
    assert logits.shape == (32, backbone.model.config.vocab_size) and labels.tolist() == [0] * 16 + [1] * 16
    for row in (0, 17, 31):  # plain: the rendered prompt alone, the logits at its mask token
        ids = task.items("train")[row].rendered.input_ids
        with torch.no_grad():
            out = backbone.model(input_ids=torch.tensor([ids])).logits[0]
        mask = ids.index(backbone.tokenizer.mask_token_id)
        np.testing.assert_allclose(logits[row], out[mask].numpy(), rtol=1e-5, atol=1e-5)


def test_label_candidates_equal_a_plain_recomputation(tiny_task):
    task, backbone = tiny_task
    logits, labels = mask_logits(task, backbone)
    tokens = [t or "" for t in backbone.tokenizer.convert_ids_to_tokens(list(range(logits.shape[1])))]
    k, n_pairs = 6, 10
    plain = []  # per class: word-start tokens by mean logit, highest first (ties: lower id), first k
    for label in (0, 1):
        rows = [i for i in range(len(labels)) if labels[i] == label]
        means = {v: sum(float(logits[i, v]) for i in rows) / len(rows) for v in range(len(tokens))}
        ranked = sorted((v for v in means if tokens[v].startswith(WORD_START)), key=lambda v: (-means[v], v))
        plain.append(ranked[:k])
    assert likely_words(logits, labels, tokens, k) == plain
    scored = []
    for pair in itertools.product(*plain):
        correct = sum(int(max(range(2), key=lambda c: (logits[i, pair[c]], -c)) == labels[i]) for i in range(len(labels)))
        scored.append((pair, correct / len(labels)))
    scored.sort(key=lambda s: -s[1])  # stable: ties keep the product order
    found = search_mappings(logits, labels, tokens, k, n_pairs)
    assert [(m.token_ids, m.train_accuracy) for m in found] == scored[:n_pairs]
    assert [m.words for m in found[:3]] == [tuple(tokens[i][1:] for i in pair) for pair, _ in scored[:3]]


def test_label_search_refuses_a_vocabulary_without_word_starts():
    with pytest.raises(ConfigError, match="RoBERTa"):
        search_mappings(np.zeros((2, 3), dtype=np.float32), np.array([0, 1]), ["a", "b", "c"])


@pytest.mark.parametrize(("lmbff", "suite"), [
    ("*cls**sent_0*_It_was*mask*.*sep+*", "{sentence:trunc} It was [MASK]."),  # SST-2's manual template
    ("*cls**sent_0*_A_truly*mask*_movie.*sep+*", "{sentence:trunc} A truly [MASK] movie."),
    ("*cls*_This_one_is*mask*.*+sent_0**sep+*", " This one is [MASK]. {sentence:trunc}"),  # " This": ĠThis
    ("*cls**sent-_0*?*mask*,*+sentl_1**sep+*", "{premise:trunc,drop_last}? [MASK], {hypothesis:trunc,lcfirst}"),
])
def test_lmbff_notation_to_suite_templates(lmbff, suite):
    fields = ["sentence"] if "sentl_1" not in lmbff else ["premise", "hypothesis"]
    assert suite_text(lmbff, fields) == suite


@pytest.mark.parametrize("lmbff", ["_a_b_c", "*cls**sent_0*_great_*mask*.*sep+*", "*cls**sent_0*_a__b*mask*",
                                   "*cls*_It_was*mask*.*sep+*", "*cls**sent_0*_a*mask*_b*mask*"])
def test_templates_the_suite_cannot_render_exactly_are_refused(lmbff):
    with pytest.raises(ConfigError):
        suite_text(lmbff, ["sentence"])


def test_t5_input_of_the_first_sst2_format_by_hand():
    pieces = {"Great": [11], " fun": [12], " terrible": [13], "<extra_id_0>": 99, "<extra_id_1>": 98, "</s>": 1}
    tok = SimpleNamespace(eos_token_id=1, encode=lambda text, add_special_tokens: pieces[text],
                          convert_tokens_to_ids=lambda t: pieces[t])
    # *cls* (no T5 token), *sentu_0* ("great fun" with its first letter upper-cased), <extra_id_0>,
    # " terrible" (the label word after a space), <extra_id_1>, *sep+* (</s>)
    with pytest.raises(KeyError):  # "great fun" is never encoded as written: sentu_ upper-cases it
        t5_input("*cls**sent_0*", ["great fun"], "terrible", tok)
    pieces["Great fun"] = [11, 12]
    assert t5_input(FORMATS["SST-2"][0].source, ["great fun"], "terrible", tok) == [11, 12, 99, 13, 98, 1]


@pytest.mark.parametrize("lmbff", ["*cls**sent_0*_It_was*mask*.*sep+*", "*cls**sent_0*_A_truly*mask*_movie.*sep+*",
                                   "*cls*_This_one_is*mask*.*+sent_0**sep+*", "*cls**sent_0*.*mask*!*sep+*"])
def test_converted_templates_render_as_lmbff_encodes_their_parts(lmbff):
    from bench.parity.lmbff_suite import tokenizer
    from bench.prompts.render import render
    from bench.prompts.template import parse_template

    tok, sentence = tokenizer(), "a gorgeous , witty film ."
    ids = []  # LM-BFF's tokenize_multipart_input, part by part ('_' is a space; one character: its token)
    for part in lmbff.split("*"):
        if part == "cls":
            ids.append(tok.cls_token_id)
        elif part == "sep+":
            ids.append(tok.sep_token_id)
        elif part == "mask":
            ids.append(tok.mask_token_id)
        elif part in ("sent_0", "+sent_0"):
            ids += tok.encode((" " if part[0] == "+" else "") + sentence, add_special_tokens=False)
        elif part:
            text = part.replace("_", " ")
            ids += [tok.convert_tokens_to_ids(text)] if len(text) == 1 else tok.encode(text, add_special_tokens=False)
    rendered = render(parse_template(suite_text(lmbff, ["sentence"])), {"sentence": sentence}, tok, "mlm")
    assert rendered.input_ids == ids and rendered.target_prefix_space  # label words: " " + word, as LM-BFF


def test_large_searches_index_the_product_without_listing_it():
    from bench.lmbff.auto_labels import _nth_product, mapping_accuracy

    pools = [[5, 1, 9], [2, 7], [4, 0, 3, 8]]
    assert [_nth_product(pools, i) for i in range(24)] == list(itertools.product(*pools))
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(7, 10)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2, 0])
    plain = [np.mean(np.argmax(logits[:, list(p)], axis=1) == labels) for p in itertools.product(*pools)]
    assert mapping_accuracy(logits, labels, pools).tolist() == plain
