"""P-Tuning v2's classifier head on the pooled output (bench.backbones.pooler), against PEFT and transformers.

The reference classifies ``outputs[1]`` of ``BertModel`` / ``RobertaModel`` under its prefixes. Here PEFT's
prefix tuning (FEATURE_EXTRACTION; PEFT's SEQ_CLS wrapper cannot pass a cache to transformers 5's
BertForSequenceClassification) on ``BertModel`` / ``RobertaModel(add_pooling_layer=True)`` with our encoder
weights, prefixes and pooler copied in gives ``pooler_output``; through our classifier it must equal our
logits. Tiny models and batches from test_prefix_tuning.
"""

import copy

import pytest
import torch
import transformers as tf
from peft import PrefixTuningConfig, TaskType, get_peft_model
from test_prefix_tuning import backbone, toy_batch

from bench.backbones.pooler import checkpoint_pooler, pretrained_pooler
from bench.methods.ptuning_v2 import PTuningV2

L, LABELS = 4, 3


def ours(arch: str):
    method = PTuningV2(length=L, output_space="labels", pool="pooler", num_labels=LABELS, dropout=0.0,
                       head_dropout=0.0, backbone_dropout=False)
    method.setup(backbone(arch))
    torch.manual_seed(3)
    with torch.no_grad():
        for p in method.head.parameters():
            p.normal_()
    method.eval_mode()
    return method


def _encoder_state(model, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in model.state_dict().items() if k.startswith(prefix + ".")}


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_pooled_head_equals_peft_prefix_on_the_model_with_its_pooler(arch):
    method = ours(arch)
    mlm = method.backbone.model
    config = copy.deepcopy(mlm.config)
    config.hidden_dropout_prob, config.attention_probs_dropout_prob = 0.0, 0.0
    cls = tf.BertModel if arch == "bert" else tf.RobertaModel
    base = cls(config, add_pooling_layer=True).eval()
    missing = base.load_state_dict(_encoder_state(mlm, arch), strict=False).missing_keys
    assert sorted(missing) == ["pooler.dense.bias", "pooler.dense.weight"]
    base.pooler.dense.load_state_dict(method.pooler.dense.state_dict())
    peft_model = get_peft_model(base, PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION,
                                                         num_virtual_tokens=L)).eval()
    method.prompts.encoders["layers"].load_state_dict(peft_model.prompt_encoder["default"].state_dict())
    batch = toy_batch(arch)
    with torch.no_grad():
        pooled = peft_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).pooler_output
        expected = pooled @ method.head.classifier.weight.T + method.head.classifier.bias  # outputs[1] -> classifier
        got = method.scorer()(batch)
        raw_first_token = method.head(method.backbone.model.base_model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state[:, 0])
    assert got.shape == (len(batch.input_ids), LABELS)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, raw_first_token, atol=1e-3)  # the pooler (and prefix) matter


def test_checkpoint_pooler_is_read_from_the_files_and_frozen(tmp_path):
    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=20, max_position_embeddings=32)
    tf.BertForPreTraining(config).save_pretrained(tmp_path)  # carries bert.pooler.dense.*
    saved = tf.BertModel.from_pretrained(tmp_path).pooler.dense
    mlm = tf.BertForMaskedLM.from_pretrained(tmp_path)
    assert not hasattr(mlm.bert, "pooler") or mlm.bert.pooler is None
    weights = checkpoint_pooler(mlm)
    assert weights is not None and torch.equal(weights["weight"], saved.weight.detach())
    pooler = pretrained_pooler(mlm, 16)
    assert pooler.source == "checkpoint" and not any(p.requires_grad for p in pooler.parameters())
    x = torch.randn(2, 16)
    assert torch.allclose(pooler(x), torch.tanh(x @ saved.weight.T + saved.bias).detach(), atol=1e-6)


def test_no_pooler_in_the_checkpoint_gives_a_fresh_frozen_one():
    method = ours("roberta")
    assert method.pooler.source == "fresh"
    assert not any(p.requires_grad for p in method.pooler.parameters())
    trainable = {id(p) for p in method.trainable_parameters()}
    assert all(id(p) not in trainable for p in method.pooler.parameters())
    assert all(id(p) in trainable for p in method.head.parameters())


def test_pooler_needs_a_bert_style_encoder():
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="BERT-style"):
        PTuningV2(length=L, output_space="labels", pool="pooler").setup(backbone("gpt2"))
