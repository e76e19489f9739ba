"""Rendering on the suite's tiny models' own tokenizers (bench.models.tiny): the whole-string
equivalence and the target slot per family, on the tokenizers the LAMA runs really use."""

from __future__ import annotations

from functools import lru_cache

import pytest
from test_render import lama_cases
from transformers import AutoTokenizer

from bench.prompts import parse_template, render, target_token_ids

TINY = {"tiny-bert": "mlm", "tiny-roberta": "mlm", "tiny-albert": "mlm", "tiny-gpt2": "clm", "tiny-t5": "seq2seq"}


@lru_cache(maxsize=8)
def tiny_tokenizer(name: str):
    from bench.backbones.loading import load_model_config
    from bench.models.tiny import current_build, ensure_built, repo_folder
    from bench.paths import models_dir

    cfg = load_model_config(name)
    revision = ensure_built(cfg)
    assert current_build(cfg) is not None
    return AutoTokenizer.from_pretrained(str(repo_folder(cfg["hub_id"], models_dir() / "hub") / "snapshots" / revision))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_tokenizers_render_like_the_natural_sentence(name):
    family, tok = TINY[name], tiny_tokenizer(name)
    sentinel = tok.convert_tokens_to_ids("<extra_id_0>") if family == "seq2seq" else None
    located = render(parse_template("[X] is located in [Y] ."), {"x": "Paris"}, tok, family)
    if family == "mlm":
        assert located.input_ids[located.target_positions[0]] == tok.mask_token_id
        assert located.input_ids[-2:] == [*tok.encode(" .", add_special_tokens=False)[-1:], tok.sep_token_id]
    elif family == "clm":
        assert tok.convert_ids_to_tokens(located.input_ids)[-1] == "Ġin" and located.target_positions == [3]
    else:
        assert located.decoder_input_ids == [tok.pad_token_id, sentinel] and located.target_positions == [1]
    for text, subject, obj in lama_cases()[::3]:
        template = parse_template(text)
        plain = render(template, {"x": subject}, tok, family)
        target = target_token_ids(obj, tok, prefix_space=plain.target_prefix_space)
        ids = list(render(template, {"x": subject}, tok, family, num_target_tokens=len(target)).input_ids)
        sentence = template.fill({"x": subject}, target=obj).rstrip()
        if family == "clm":
            if ids and ids[0] == tok.bos_token_id:
                continue
            expected = tok.encode(sentence, add_special_tokens=False)[: len(ids) + len(target)]
            ids += target
        else:
            at = ids.index(sentinel) if sentinel is not None else plain.target_positions[0]
            ids[at : at + (1 if sentinel is not None else len(target))] = target
            expected = tok.encode(sentence)
        assert ids == expected, (text, subject, obj, tok.convert_ids_to_tokens(ids), tok.convert_ids_to_tokens(expected))
