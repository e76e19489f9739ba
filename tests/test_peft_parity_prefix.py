"""Our prefix_tuning against PEFT's prefix tuning (peft 0.21, transformers 5.x) on the same tiny weights.

PEFT's PrefixEncoder has the paper's shapes (Embedding(L, d) -> Linear(d, m) -> tanh ->
Linear(m, layers*2*hidden), or a table Embedding(L, layers*2*hidden)) and the same parameter names,
so its state dict loads into ours; with the same prefixes the logits must agree.

- gpt2: PeftModelForCausalLM; logits at the targets.
- bert, roberta: PEFT has no masked-LM task type; FEATURE_EXTRACTION wraps the *ForMaskedLM model
  and forwards past_key_values + the extended mask to it, so we compare its MLM logits at the
  targets. PEFT (like the paper code) lets the cache offset the positions: real tokens at L, L+1..
  (our default ``shift_positions=True``).
- t5: PEFT differs from the paper. Li & Liang prefix the encoder self-attention, the decoder
  self-attention and the cross-attention, each with its own MLP. PEFT (SEQ_2_SEQ_LM) builds
  2*layers prefixes by duplicating one tensor, then *replaces* the cross-attention cache by an
  empty one and gives the encoder nothing, so only decoder self-attention is prefixed, and decoder
  layer i receives block (2*i mod layers) of its table. We compare ``t5_sites=[decoder]`` with PEFT's
  blocks re-indexed that way; the paper's three-site behaviour is asserted in test_prefix_tuning.
  PEFT also takes its layer count from ``num_layers`` (the encoder's), so a deeper decoder needs
  ``num_layers`` set explicitly.
- albert: PEFT cannot prefix ALBERT (its attention takes no cache; the extended mask no longer
  matches the keys) - asserted below; ours is checked against a plain re-implementation instead.
"""

import copy
from dataclasses import replace

import pytest
import torch
from peft import PrefixTuningConfig, TaskType, get_peft_model
from test_prefix_tuning import tiny, toy_batch

from bench.backbones.scoring import target_logits
from bench.methods.deep_prompts import DeepPrompts

L, MID = 4, 24
TASKS = {"gpt2": TaskType.CAUSAL_LM, "bert": TaskType.FEATURE_EXTRACTION, "roberta": TaskType.FEATURE_EXTRACTION}


def peft_logits(peft_model, batch):
    kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if batch.decoder_input_ids is not None:
        kwargs["decoder_input_ids"] = batch.decoder_input_ids
    with torch.no_grad():
        return peft_model(**kwargs).logits[batch.target_rows, batch.target_cols].float()


def ours_logits(model, prompts, batch):
    with torch.no_grad():
        return target_logits(model, replace(batch, forward_patch=prompts.patch()))


@pytest.mark.parametrize("arch", ["gpt2", "bert", "roberta"])
@pytest.mark.parametrize("projection", [False, True])
def test_logits_equal_peft_prefix_tuning(arch, projection):
    model = tiny(arch)
    batch = toy_batch(arch)
    torch.manual_seed(7)
    config = PrefixTuningConfig(task_type=TASKS[arch], num_virtual_tokens=L, prefix_projection=projection,
                                encoder_hidden_size=MID)
    peft_model = get_peft_model(copy.deepcopy(model), config).eval()
    prompts = DeepPrompts(model, L, reparameterize=projection, mid_dim=MID).eval()
    prompts.encoders["layers"].load_state_dict(peft_model.prompt_encoder["default"].state_dict())
    reference = peft_logits(peft_model, batch)
    ours = ours_logits(model, prompts, batch)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert not torch.allclose(reference, target_logits(model, batch), atol=1e-3)  # the prefix matters


def test_unshifted_positions_are_not_what_peft_computes():
    """PEFT offsets positions by L (the cache length); shift_positions=False deliberately differs."""
    model = tiny("bert")
    batch = toy_batch("bert")
    torch.manual_seed(7)
    config = PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=L)
    peft_model = get_peft_model(copy.deepcopy(model), config).eval()
    prompts = DeepPrompts(model, L, reparameterize=False, shift_positions=False).eval()
    prompts.encoders["layers"].load_state_dict(peft_model.prompt_encoder["default"].state_dict())
    assert not torch.allclose(ours_logits(model, prompts, batch), peft_logits(peft_model, batch), atol=1e-3)


def _peft_t5_block_order(n_layers: int, width: int) -> torch.Tensor:
    """Columns of PEFT's flat prefix that decoder layer i uses: block (2*i mod n), keys then values."""
    return torch.cat([torch.arange(2 * width) + ((2 * i) % n_layers) * 2 * width for i in range(n_layers)])


@pytest.mark.parametrize("projection", [False, True])
def test_t5_decoder_prefixes_equal_peft_seq2seq(projection):
    model = tiny("t5")  # 2 encoder, 3 decoder layers
    n_dec, width = model.config.num_decoder_layers, model.config.num_heads * model.config.d_kv
    batch = toy_batch("t5")
    torch.manual_seed(7)
    config = PrefixTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=L, prefix_projection=projection,
                                encoder_hidden_size=MID, num_layers=n_dec)
    peft_model = get_peft_model(copy.deepcopy(model), config).eval()
    state = {k: v.clone() for k, v in peft_model.prompt_encoder["default"].state_dict().items()}
    order = _peft_t5_block_order(n_dec, width)
    if projection:
        state["transform.2.weight"], state["transform.2.bias"] = (state["transform.2.weight"][order],
                                                                  state["transform.2.bias"][order])
    else:
        state["embedding.weight"] = state["embedding.weight"][:, order]
    prompts = DeepPrompts(model, L, reparameterize=projection, mid_dim=MID, t5_sites=["decoder"]).eval()
    prompts.encoders["decoder"].load_state_dict(state)
    reference = peft_logits(peft_model, batch)
    assert torch.allclose(ours_logits(model, prompts, batch), reference, atol=1e-5)
    assert not torch.allclose(reference, target_logits(model, batch), atol=1e-3)


def test_peft_block_order_is_what_its_cache_construction_does():
    """Replays PEFT's duplicate-permute-split on labelled blocks: layer i's self-attention block."""
    n, width = 3, 1
    flat = torch.arange(2 * n, dtype=torch.float).view(1, 1, 2 * n, 1, 1)  # block b = layer b//2, k/v b%2
    doubled = torch.cat([flat, flat], dim=2).permute([2, 0, 3, 1, 4]).split(4)
    self_keys = [int(chunk[0].item()) for chunk in doubled]  # (self k, self v, cross k, cross v) per layer
    assert self_keys == [0, 4, 2]  # = 2 * ((2*i) mod n): layers 0, 2, 1
    assert _peft_t5_block_order(n, width)[::2].tolist() == self_keys


def test_peft_cannot_prefix_albert():
    model = tiny("albert")
    batch = toy_batch("albert")
    config = PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=L)
    peft_model = get_peft_model(copy.deepcopy(model), config).eval()
    with pytest.raises(RuntimeError):
        peft_logits(peft_model, batch)
