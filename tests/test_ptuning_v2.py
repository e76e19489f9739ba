"""ptuning_v2 on tiny random backbones: prompt tables, verbalizer and classifier-head output spaces.

Counts by hand: prompts L*n*2*E per site group (no MLP by default), head hidden*k + k.
Tiny models and toy batches come from test_prefix_tuning (width 32, E = 32).
"""

from dataclasses import fields

import pytest
import torch
from test_prefix_tuning import ARCHES, GOLD, LAYERS, backbone, toy_batch
from transformers import DynamicCache

from bench.errors import ConfigError
from bench.methods.ptuning_v2 import PTuningV2

LABELS = torch.tensor([0, 1, 2, 1])


QUIET = {"dropout": 0.0, "head_dropout": 0.0, "backbone_dropout": False}  # deterministic training curves


def make(arch, **options):
    method = PTuningV2(**{"length": 4, **options})
    method.setup(backbone(arch))
    return method


def train(method, batch, gold, steps: int, lr: float = 0.05) -> list[float]:
    optimizer = torch.optim.Adam(method.trainable_parameters(), lr=lr)
    scorer, losses = method.scorer(), []
    method.train_mode()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(scorer(batch), gold)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    method.eval_mode()
    return losses


def prompt_count(arch: str, length: int) -> int:
    return sum(length * n * 2 * 32 for n in LAYERS[arch].values())


@pytest.mark.parametrize("arch", ARCHES)
def test_defaults_are_plain_prompt_tables_of_length_16(arch):
    method = make(arch, length=16)
    assert not method.prompts.reparameterized
    assert method.prompts.dropout.p == 0.1
    assert sum(p.numel() for p in method.trainable_parameters()) == prompt_count(arch, 16)
    assert PTuningV2().options["length"] == 16


@pytest.mark.parametrize("arch", ARCHES)
def test_labels_head_trains_with_the_prompts_and_nothing_else_changes(arch):
    method = make(arch, output_space="labels", num_labels=3, **QUIET)
    model = method.backbone.model
    assert set(method.own_modules()) == {"prefix", "head"}
    assert sum(p.numel() for p in method.trainable_parameters()) == prompt_count(arch, 4) + 32 * 3 + 3
    batch = toy_batch(arch)
    with torch.no_grad():
        assert method.scorer()(batch).shape == (4, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    own_before = [p.detach().clone() for p in method.trainable_parameters()]
    losses = train(method, batch, LABELS, steps=10)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(not torch.equal(a, b) for a, b in zip(method.trainable_parameters(), own_before, strict=True))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("arch", ARCHES)
def test_verbalizer_output_space_learns_the_target_words(arch):
    method = make(arch, **QUIET)
    assert method.output_space == "vocab"
    losses = train(method, toy_batch(arch), GOLD, steps=10)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_labels_scores_equal_the_head_over_a_hand_run_prefixed_forward(arch):
    method = make(arch, output_space="labels", num_labels=3)
    method.eval_mode()
    batch = toy_batch(arch)
    model, n = method.backbone.model, batch.input_ids.shape[0]
    with torch.no_grad():
        ours = method.scorer()(batch)
        prefix = method.prompts.encoders["layers"]()
        cache = DynamicCache([(layer[0].expand(n, -1, -1, -1), layer[1].expand(n, -1, -1, -1)) for layer in prefix])
        mask = torch.cat([torch.ones(n, 4, dtype=torch.long), batch.attention_mask], 1)
        base = model.bert if arch == "bert" else model.transformer
        hidden = base(input_ids=batch.input_ids, attention_mask=mask, past_key_values=cache).last_hidden_state
        last = batch.attention_mask.sum(1) - 1
        pooled = hidden[:, 0] if arch == "bert" else hidden[torch.arange(n), last]
        head = method.head
        reference = pooled @ head.classifier.weight.T + head.classifier.bias
    assert torch.allclose(ours, reference, atol=1e-5)


def test_backbone_dropout_switches_the_frozen_model_to_train_mode():
    method = make("bert")
    method.train_mode()
    assert method.backbone.model.training and method.prompts.training
    method.eval_mode()
    assert not method.backbone.model.training
    quiet = make("bert", backbone_dropout=False)
    quiet.train_mode()
    assert not quiet.backbone.model.training and quiet.prompts.training


def test_save_load_round_trips_prompts_and_head(tmp_path):
    method = make("roberta", output_space="labels", num_labels=3)
    train(method, toy_batch("roberta"), LABELS, steps=2)
    path = method.save_trainable(tmp_path / "pt2.pt")
    saved = torch.load(path, weights_only=True)["modules"]
    assert set(saved) == {"prefix", "head"}
    assert sum(v.numel() for m in saved.values() for v in m.values()) == prompt_count("roberta", 4) + 99
    fresh = make("roberta", output_space="labels", num_labels=3)
    fresh.load_trainable(path)
    for a, b in zip(fresh.trainable_parameters(), method.trainable_parameters(), strict=True):
        assert torch.equal(a, b)
    batch = toy_batch("roberta")
    with torch.no_grad():
        assert torch.equal(fresh.scorer()(batch), method.scorer()(batch))


def test_reparameterize_option_uses_the_prefix_mlp():
    method = make("gpt2", reparameterize=True, mid_dim=16)
    d, m, out = 32, 16, 2 * 2 * 32
    assert sum(p.numel() for p in method.trainable_parameters()) == 4 * d + d * m + m + m * out + out


def test_bad_output_space_fails_at_construction():
    with pytest.raises(ConfigError, match="output_space must be"):
        PTuningV2(output_space="logits")


def test_the_runner_can_size_the_head_after_setup():
    method = make("bert", output_space="labels")
    assert set(method.own_modules()) == {"prefix"}
    with pytest.raises(ConfigError, match="set_num_labels"):
        method.scorer()(toy_batch("bert"))
    method.set_num_labels(1)  # e.g. one score per multiple-choice option
    assert method.scorer()(toy_batch("bert")).shape == (4, 1)
    assert sum(p.numel() for p in method.trainable_parameters()) == prompt_count("bert", 4) + 32 + 1
    with pytest.raises(ConfigError, match="output_space=labels only"):
        make("bert").set_num_labels(2)


def test_pooling_that_cannot_apply_fails_at_setup():
    with pytest.raises(ConfigError, match="decoder_start"):
        make("bert", output_space="labels", num_labels=2, pool="decoder_start")


def test_with_prefix_does_not_touch_the_callers_batch():
    method = make("bert")
    batch = toy_batch("bert")
    patched = method.with_prefix(batch)
    assert batch.forward_patch is None and patched.forward_patch is not None
    assert all(getattr(patched, f.name) is getattr(batch, f.name) for f in fields(batch) if f.name != "forward_patch")
