"""prompt_classifier and finetune head=auto_model on tiny random models: what trains, what errors say."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import transformers as tf

from bench.backbones.scoring import pad_batch
from bench.errors import ConfigError
from bench.methods.finetune import FineTune
from bench.methods.prompt_classifier import PromptClassifier

COMMON = {"vocab_size": 60, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 37}


def backbone(arch: str, positions: int = 64):
    torch.manual_seed(0)
    if arch == "bert":
        model = tf.BertForMaskedLM(tf.BertConfig(max_position_embeddings=positions, pad_token_id=0, **COMMON))
    elif arch == "roberta":
        model = tf.RobertaForMaskedLM(tf.RobertaConfig(max_position_embeddings=positions, pad_token_id=1,
                                                       type_vocab_size=1, **COMMON))
    else:
        model = tf.AlbertForMaskedLM(tf.AlbertConfig(embedding_size=16, max_position_embeddings=positions,
                                                     pad_token_id=0, **COMMON))
    return SimpleNamespace(model=model.eval(), device=torch.device("cpu"))


def batch(pad_id: int):
    return pad_batch([[5, 9, 11, 7, 3], [5, 12, 3]], [[0], [0]], pad_id)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
@pytest.mark.parametrize("n_out", [2, 1])
def test_one_step_changes_only_the_prompt_and_the_head(arch, n_out):
    bb = backbone(arch)
    method = PromptClassifier(length=3, dropout=0.0)
    method.setup(bb)
    method.set_num_labels(n_out)
    before = {n: p.detach().clone() for n, p in bb.model.named_parameters()}
    pooler = {n: p.detach().clone() for n, p in method.pooler.named_parameters()}
    own = {f"{g}.{n}": p.detach().clone() for g, m in method.own_modules().items() for n, p in m.named_parameters()}
    optimizer = torch.optim.SGD(method.trainable_parameters(), lr=1.0)
    method.train_mode()
    assert bb.model.training  # backbone_dropout: the reference trains with model.train()
    scores = method.scorer()(batch(bb.model.config.pad_token_id))
    assert scores.shape == (2, n_out)
    scores.pow(2).sum().backward()
    optimizer.step()
    assert all(torch.equal(p, before[n]) for n, p in bb.model.named_parameters())
    assert all(torch.equal(p, pooler[n]) for n, p in method.pooler.named_parameters())
    after = {f"{g}.{n}": p for g, m in method.own_modules().items() for n, p in m.named_parameters()}
    assert set(after) == {"prompt.weight", "head.classifier.weight", "head.classifier.bias"}
    assert all(not torch.equal(after[n], own[n]) for n in after)


def test_prompt_and_input_past_the_positions_is_a_clear_error():
    bb = backbone("roberta", positions=8)  # RoBERTa: positions start after the padding index (1): 6 usable
    method = PromptClassifier(length=3, num_labels=2)
    method.setup(bb)
    with pytest.raises(ConfigError, match="3 prompt vectors \\+ 5 input tokens exceed the model's 6 positions"):
        method.scorer()(batch(1))


def test_prompt_classifier_refuses_other_architectures():
    with pytest.raises(ConfigError, match="not defined for 'albert'"):
        PromptClassifier().setup(backbone("albert"))


@pytest.mark.parametrize(("arch", "n_out", "pooler", "dense"), [("bert", 2, True, False), ("roberta", 2, False, True),
                                                                 ("bert", 1, True, False), ("roberta", 1, True, False)])
def test_auto_model_head_layout(arch, n_out, pooler, dense):
    """BertForSequenceClassification / RobertaForSequenceClassification / *ForMultipleChoice layouts."""
    bb = backbone(arch)
    method = FineTune(head="auto_model", init="reference")
    method.setup(bb)
    method.set_num_labels(n_out)
    assert (method.pooler is not None) == pooler and (method.head.dense is not None) == dense
    assert method.head.classifier.out_features == n_out
    assert float(method.head.classifier.bias.detach().abs().max()) == 0.0
    if pooler:
        assert all(p.requires_grad for p in method.pooler.parameters())  # tuned with the backbone
    assert method.scorer()(batch(bb.model.config.pad_token_id)).shape == (2, n_out)


def test_auto_model_head_refuses_other_architectures():
    # ALBERT is served since PET's distilled classifier (AlbertForSequenceClassification: its pooler); GPT-2 is not
    gpt2 = SimpleNamespace(model=tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=32,
                                                                  vocab_size=50)).eval(), device=torch.device("cpu"))
    with pytest.raises(ConfigError, match="head=auto_model is defined for albert, bert and roberta, not 'gpt2'"):
        FineTune(head="auto_model").setup(gpt2)
