"""``model.mlm_head_layer_norm_eps`` (bench.backbones.loading): transformers 3.0.2, which PET and PT-Fewshot ran,
built ALBERT's masked-LM head LayerNorm with torch's eps 1e-5; today's transformers passes config.layer_norm_eps
(1e-12). The option sets it after loading; the FewGLUE PET / P-Tuning presets ask for 1e-5 on ALBERT only."""

from __future__ import annotations

import math

import pytest
import torch

from bench.backbones import check_model_config, load_backbone, load_model_config
from bench.errors import ConfigError


def albert(eps):
    return load_backbone({**load_model_config("tiny-albert"), "mlm_head_layer_norm_eps": eps}, device="cpu",
                         dtype="fp32")


def plain_head(model, ids: torch.Tensor, eps: float) -> torch.Tensor:
    """ALBERT's MLM head written out: dense, gelu_new, LayerNorm with ``eps``, the tied decoder and its bias."""
    head = model.predictions
    with torch.no_grad():
        hidden = model.albert(input_ids=ids).last_hidden_state
        h = hidden @ head.dense.weight.T + head.dense.bias
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h**3)))
        mean, var = h.mean(-1, keepdim=True), h.var(-1, unbiased=False, keepdim=True)
        h = (h - mean) / torch.sqrt(var + eps) * head.LayerNorm.weight + head.LayerNorm.bias
        return h @ model.albert.embeddings.word_embeddings.weight.T + head.decoder.bias


def test_albert_head_eps_set_and_the_logits_are_a_plain_recomputation_with_it():
    backbone = albert(1e-5)
    model = backbone.model
    assert model.predictions.LayerNorm.eps == 1e-5 and backbone.mlm_head_layer_norm_eps == 1e-5
    assert model.config.layer_norm_eps == 1e-12  # the rest of the model keeps the config's eps
    assert all(m.eps == 1e-12 for n, m in model.albert.named_modules() if isinstance(m, torch.nn.LayerNorm))
    ids = torch.tensor([backbone.tokenizer("the capital of france is paris .")["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    want = plain_head(model, ids, 1e-5)
    scale = want.abs().max()
    assert float((logits - want).abs().max() / scale) < 1e-5
    # the control: today's eps gives other logits, well beyond that tolerance
    assert float((plain_head(model, ids, 1e-12) - want).abs().max() / scale) > 1e-4


def test_null_leaves_the_head_as_loaded_and_a_mapping_sets_only_its_archs():
    assert albert(None).model.predictions.LayerNorm.eps == 1e-12
    assert albert({"albert": 1e-5}).model.predictions.LayerNorm.eps == 1e-5
    bert = load_backbone({**load_model_config("tiny-bert"), "mlm_head_layer_norm_eps": {"albert": 1e-5}},
                         device="cpu", dtype="fp32")
    assert bert.mlm_head_layer_norm_eps is None
    assert bert.model.cls.predictions.transform.LayerNorm.eps == bert.model.config.layer_norm_eps


def test_a_model_without_an_mlm_head_layer_norm_is_refused():
    with pytest.raises(ConfigError, match="mlm_head_layer_norm_eps=1e-05.*no masked-LM head LayerNorm"):
        load_backbone({**load_model_config("tiny-gpt2"), "mlm_head_layer_norm_eps": 1e-5}, device="cpu",
                      dtype="fp32")


@pytest.mark.parametrize("bad", [0, -1e-5, "1e-5", True, {"albrt": 1e-5}, {"albert": "x"}])
def test_bad_values_are_refused_before_loading(bad):
    with pytest.raises(ConfigError, match="mlm_head_layer_norm_eps"):
        check_model_config({**load_model_config("tiny-albert"), "mlm_head_layer_norm_eps": bad})


def test_the_fewglue_albert_presets_ask_for_transformers_302s_eps():
    from omegaconf import OmegaConf

    from bench.backbones.configs import head_eps_for
    from bench.study import compose_job, hydra_context

    with hydra_context():
        for preset in ("fewglue_pet_rte", "fewglue_ipet_g1_wic", "fewglue_ptuning_cb"):
            albert_cfg = OmegaConf.to_container(compose_job(preset, "tiny-albert", []), resolve=True)["model"]
            bert_cfg = OmegaConf.to_container(compose_job(preset, "tiny-bert", []), resolve=True)["model"]
            assert (head_eps_for(albert_cfg), head_eps_for(bert_cfg)) == (1e-5, None), preset
