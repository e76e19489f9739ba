"""prefix_tuning on tiny random backbones of every family: what trains, how much, and the math.

Parameter counts by hand (L prefix length, d token width, m MLP width, per site group: n layers,
E = heads * head_dim):  table L*n*2*E;  MLP L*d + d*m + m + m*n*2*E + n*2*E.
Tiny models: width 32, 2 heads (E = 32); bert/roberta/gpt2 2 layers; albert 3 layers sharing one
set of weights (3 prefixed attention calls); t5 2 encoder + 3 decoder layers (d_kv 16, E = 32).
"""

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
import transformers as tf
from transformers import DynamicCache

from bench.backbones.scoring import encoder_hidden, pad_batch, target_logits
from bench.errors import ConfigError
from bench.methods.deep_prompts import DeepPrompts
from bench.methods.prefix_tuning import PrefixTuning

VOCAB = 60
ARCHES = ["bert", "roberta", "albert", "gpt2", "t5"]
LAYERS = {"bert": {"layers": 2}, "roberta": {"layers": 2}, "albert": {"layers": 3}, "gpt2": {"layers": 2},
          "t5": {"encoder": 2, "decoder": 3, "cross": 3}}


def tiny(arch: str):
    torch.manual_seed(0)
    common = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 37, "initializer_range": 0.3}
    if arch == "bert":
        return tf.BertForMaskedLM(tf.BertConfig(max_position_embeddings=64, pad_token_id=0, **common)).eval()
    if arch == "roberta":
        return tf.RobertaForMaskedLM(tf.RobertaConfig(max_position_embeddings=66, pad_token_id=1, type_vocab_size=1,
                                                      **common)).eval()
    if arch == "albert":
        common["num_hidden_layers"] = 3
        return tf.AlbertForMaskedLM(tf.AlbertConfig(embedding_size=16, max_position_embeddings=64, pad_token_id=0,
                                                    **common)).eval()
    if arch == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                                n_inner=37, bos_token_id=2, eos_token_id=2, initializer_range=0.3)).eval()
    return tf.T5ForConditionalGeneration(tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=37, num_layers=2,
                                                     num_decoder_layers=3, num_heads=2, pad_token_id=0,
                                                     decoder_start_token_id=0)).eval()


def backbone(arch: str):
    return SimpleNamespace(name=f"tiny-{arch}", arch=arch, model=tiny(arch), tokenizer=None,
                           device=torch.device("cpu"), dtype=torch.float32)


ROWS = [[5, 9, 11, 7, 3], [5, 12, 3], [6, 8, 13, 3], [5, 14, 15, 16, 17, 3]]
GOLD = torch.tensor([20, 21, 22, 23])


def toy_batch(arch: str, rows=ROWS):
    """One target per row: position 1 (a 'mask'), the last token for gpt2, decoder position 1 for t5."""
    pad = 1 if arch == "roberta" else 0
    if arch == "t5":
        return pad_batch(rows, [[1]] * len(rows), pad, decoder_sequences=[[0, 4]] * len(rows))
    targets = [[len(r) - 1] for r in rows] if arch == "gpt2" else [[1]] * len(rows)
    return pad_batch(rows, targets, pad)


def make(arch, **options):
    options = {"length": 3, "mid_dim": 16, **options}
    method = PrefixTuning(**options)
    method.setup(backbone(arch))
    return method


def train(method, batch, steps: int, lr: float = 0.05) -> list[float]:
    optimizer = torch.optim.Adam(method.trainable_parameters(), lr=lr)
    scorer, losses = method.scorer(), []
    method.train_mode()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(scorer(batch), GOLD[: len(batch.target_rows)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    method.eval_mode()
    return losses


def expected_count(arch: str, length: int, reparameterize: bool, mid: int = 16) -> int:
    d, E, total = 32, 32, 0
    for n in LAYERS[arch].values():
        out = n * 2 * E
        total += (length * d + d * mid + mid + mid * out + out) if reparameterize else length * out
    return total


@pytest.mark.parametrize("arch", ARCHES)
def test_only_the_prefixes_change_and_the_backbone_stays_bit_identical(arch):
    method = make(arch)
    model = method.backbone.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    own_before = [p.detach().clone() for p in method.trainable_parameters()]
    assert not any(p.requires_grad for p in model.parameters())
    train(method, toy_batch(arch), steps=3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    after = method.trainable_parameters()
    assert len(after) == len(own_before) > 0
    assert all(not torch.equal(a, b) for a, b in zip(after, own_before, strict=True))


@pytest.mark.parametrize("arch", ARCHES)
def test_loss_goes_down_on_a_tiny_overfit_set(arch):
    losses = train(make(arch), toy_batch(arch), steps=10)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("reparameterize", [True, False])
def test_trainable_parameter_count_matches_the_formula(arch, reparameterize):
    method = make(arch, reparameterize=reparameterize)
    count = sum(p.numel() for p in method.trainable_parameters())
    assert count == expected_count(arch, 3, reparameterize)
    if arch == "bert":  # written out: L=3, d=32, m=16, n=2, E=32 -> 96 + 528 + 2176 = 2800; table 3*128 = 384
        assert count == (2800 if reparameterize else 384)


@pytest.mark.parametrize("arch", ARCHES)
def test_merge_keeps_the_scores_and_drops_the_mlp(arch):
    method = make(arch)
    batch = toy_batch(arch)
    train(method, batch, steps=2)
    with torch.no_grad():
        before = method.scorer()(batch)
        method.merge()
        after = method.scorer()(batch)
    assert torch.allclose(before, after, atol=1e-6)
    assert sum(p.numel() for p in method.trainable_parameters()) == expected_count(arch, 3, False)


@pytest.mark.parametrize("arch", ARCHES)
def test_save_load_round_trips_and_holds_no_backbone_tensors(arch, tmp_path):
    method = make(arch)
    train(method, toy_batch(arch), steps=2)
    path = method.save_trainable(tmp_path / "prefix.pt")
    saved = torch.load(path, weights_only=True)
    assert set(saved["modules"]) == {"prefix"}
    keys = saved["modules"]["prefix"]
    assert all(k.startswith("encoders.") for k in keys)
    assert sum(v.numel() for v in keys.values()) == expected_count(arch, 3, True)
    torch.manual_seed(123)
    fresh = make(arch)
    fresh.load_trainable(path)
    for a, b in zip(fresh.trainable_parameters(), method.trainable_parameters(), strict=True):
        assert torch.equal(a, b)
    method.merge()  # a merged export loads into an unmerged method (which merges first)
    merged_path = method.save_trainable(tmp_path / "merged.pt")
    other = make(arch)
    other.load_trainable(merged_path)
    assert not other.prompts.reparameterized
    batch = toy_batch(arch)
    with torch.no_grad():
        assert torch.equal(other.scorer()(batch), method.scorer()(batch))


@pytest.mark.parametrize("arch", ARCHES)
def test_padding_is_invisible_with_the_prefix(arch):
    """A padded row scores exactly as it does alone: the mask covers prefix and padding correctly."""
    method = make(arch)
    train(method, toy_batch(arch), steps=1)
    scorer = method.scorer()
    with torch.no_grad():
        together = scorer(toy_batch(arch))
        alone = torch.cat([scorer(toy_batch(arch, [row])) for row in ROWS])
    assert torch.allclose(together, alone, atol=1e-5)


# the two injection mechanisms and plain re-implementations ---------------------------------

@pytest.mark.parametrize("arch", ["bert", "roberta"])
@pytest.mark.parametrize("shift", [True, False])
def test_hook_and_cache_injection_agree(arch, shift):
    model = tiny(arch)
    cache = DeepPrompts(model, 3, reparameterize=False, shift_positions=shift).eval()
    hook = DeepPrompts(model, 3, reparameterize=False, shift_positions=shift, injection="hook").eval()
    hook.load_state_dict(cache.state_dict())
    batch = toy_batch(arch)
    with torch.no_grad():
        a = target_logits(model, replace(batch, forward_patch=cache.patch()))
        b = target_logits(model, replace(batch, forward_patch=hook.patch()))
        plain = target_logits(model, batch)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, plain, atol=1e-3)


def test_shifted_and_unshifted_positions_differ_for_absolute_positions():
    model = tiny("bert")
    shifted = DeepPrompts(model, 3, reparameterize=False).eval()
    kept = DeepPrompts(model, 3, reparameterize=False, shift_positions=False).eval()
    kept.load_state_dict(shifted.state_dict())
    batch = toy_batch("bert")
    with torch.no_grad():
        a = target_logits(model, replace(batch, forward_patch=shifted.patch()))
        b = target_logits(model, replace(batch, forward_patch=kept.patch()))
    assert not torch.allclose(a, b, atol=1e-3)


def _albert_by_hand(model, ids, mask, prefix, offset):
    """ALBERT MLM logits written out: per layer, keys/values = [prefix; tokens]; positions from offset."""
    base, cfg = model.albert, model.config
    n, seq = ids.shape
    pos = torch.arange(offset, offset + seq).expand(n, seq)
    h = base.encoder.embedding_hidden_mapping_in(base.embeddings(ids, position_ids=pos))
    heads, dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    full_mask = torch.cat([torch.ones(n, prefix.shape[3]), mask.float()], 1)
    additive = (1.0 - full_mask)[:, None, None, :] * torch.finfo(torch.float32).min
    layer = base.encoder.albert_layer_groups[0].albert_layers[0]
    att = layer.attention
    for i in range(cfg.num_hidden_layers):
        def split(x):
            return x.view(n, seq, heads, dim).transpose(1, 2)
        q = split(att.query(h))
        k = torch.cat([prefix[i, 0].expand(n, -1, -1, -1), split(att.key(h))], 2)
        v = torch.cat([prefix[i, 1].expand(n, -1, -1, -1), split(att.value(h))], 2)
        probs = torch.softmax(q @ k.transpose(2, 3) / dim**0.5 + additive, -1)
        ctx = (probs @ v).transpose(1, 2).reshape(n, seq, heads * dim)
        a = att.LayerNorm(h + att.dense(ctx))
        h = layer.full_layer_layer_norm(layer.ffn_output(layer.activation(layer.ffn(a))) + a)
    return model.predictions(h)


@pytest.mark.parametrize("shift", [True, False])
def test_albert_hook_matches_a_plain_reimplementation(shift):
    model = tiny("albert")
    prompts = DeepPrompts(model, 3, reparameterize=False, shift_positions=shift).eval()
    batch = toy_batch("albert")
    with torch.no_grad():
        prefix = prompts.encoders["layers"]()
        ours = target_logits(model, replace(batch, forward_patch=prompts.patch()))
        full = _albert_by_hand(model, batch.input_ids, batch.attention_mask, prefix, 3 if shift else 0)
    assert torch.allclose(ours, full[batch.target_rows, batch.target_cols], atol=1e-5)


def test_t5_encoder_hook_matches_t5_running_its_blocks_with_a_cache():
    """The T5 encoder drops caches; driving its blocks by hand with a DynamicCache is the reference."""
    model = tiny("t5")
    prompts = DeepPrompts(model, 3, reparameterize=False, t5_sites=["encoder"]).eval()
    batch = toy_batch("t5")
    with torch.no_grad():
        prefix = prompts.encoders["encoder"]()
        ours = encoder_hidden(model, replace(batch, forward_patch=prompts.patch()))
        enc, n = model.encoder, batch.input_ids.shape[0]
        cache = DynamicCache([(layer[0].expand(n, -1, -1, -1), layer[1].expand(n, -1, -1, -1)) for layer in prefix])
        full_mask = torch.cat([torch.ones(n, 3), batch.attention_mask.float()], 1)
        additive = (1.0 - full_mask)[:, None, None, :] * torch.finfo(torch.float32).min
        h, bias = enc.embed_tokens(batch.input_ids), None
        for block in enc.block:
            h, bias, _ = block(h, additive, bias, past_key_values=cache)
        reference = enc.final_layer_norm(h)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_t5_sites_select_which_attentions_get_prefixes():
    model = tiny("t5")
    batch = toy_batch("t5")
    full = DeepPrompts(model, 3, reparameterize=False).eval()
    outs = {}
    with torch.no_grad():
        for sites in (["encoder"], ["decoder"], ["cross"]):
            part = DeepPrompts(model, 3, reparameterize=False, t5_sites=sites).eval()
            part.encoders[sites[0]].load_state_dict(full.encoders[sites[0]].state_dict())
            outs[sites[0]] = target_logits(model, replace(batch, forward_patch=part.patch()))
        plain = target_logits(model, batch)
    for name, out in outs.items():
        assert not torch.allclose(out, plain, atol=1e-4), name
    assert len({round(float(o.sum()), 4) for o in outs.values()}) == 3


# configuration errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("arch", "options", "match"), [
    ("albert", {"injection": "cache"}, "ALBERT's attention takes no past_key_values"),
    ("gpt2", {"injection": "hook"}, "cannot work for gpt2"),
    ("t5", {"shift_positions": False}, "relative positions"),
    ("t5", {"t5_sites": ["encoder", "self"]}, "t5_sites"),
    ("bert", {"length": 0}, "length >= 1"),
    ("bert", {"mid_dim": 0}, "mid_dim"),
])
def test_impossible_combinations_fail_at_setup(arch, options, match):
    with pytest.raises(ConfigError, match=match):
        make(arch, **options)


def test_unknown_architectures_are_refused():
    model = tf.DistilBertForMaskedLM(tf.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=1, n_heads=2,
                                                         hidden_dim=37))
    with pytest.raises(ConfigError, match="deep prompts support"):
        DeepPrompts(model, 3, reparameterize=False)


# end to end on the real tiny backbones (their tokenizers, rendering, the training loop) ---------

FACTS = [("Paris", "France"), ("Berlin", "Germany"), ("Rome", "Italy"), ("Madrid", "Spain")]


class CapitalFacts:
    """A TrainableTask over four LAMA-style facts rendered with the backbone's own tokenizer."""

    def __init__(self, bb):
        from bench.prompts import parse_template, render, target_token_ids

        template = parse_template("[X] is the capital of [Y] .")
        tok = bb.tokenizer
        rendered = [render(template, {"x": s, "y": o}, tok, bb.family) for s, o in FACTS]
        self.gold = torch.tensor([target_token_ids(o, tok, prefix_space=r.target_prefix_space)[0]
                                  for (_, o), r in zip(FACTS, rendered, strict=True)])
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        decoder = [r.decoder_input_ids for r in rendered] if bb.family == "seq2seq" else None
        self.batch = pad_batch([r.input_ids for r in rendered], [r.target_positions for r in rendered], pad,
                               decoder_sequences=decoder)

    def train_batches(self, batch_size, generator):
        return [self.batch]

    def loss(self, scores, batch):
        return torch.nn.functional.cross_entropy(scores, self.gold)

    def evaluate(self, split, scorer):
        with torch.no_grad():
            loss = self.loss(scorer(self.batch), self.batch).item()
        return {"loss": loss}, -loss


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-bert", "tiny-roberta", "tiny-albert", "tiny-gpt2", "tiny-t5"])
def test_fit_lowers_the_fact_loss_on_the_tiny_backbones(name, tiny_backbone):
    import copy
    from dataclasses import replace as dc_replace

    from bench.train import fit

    shared = tiny_backbone(name)
    bb = dc_replace(shared, model=copy.deepcopy(shared.model))  # the fixture's model is shared: hooks stay off it
    method = PrefixTuning(length=5, mid_dim=64)
    torch.manual_seed(0)
    method.setup(bb)
    task = CapitalFacts(bb)
    start = task.evaluate("dev", method.scorer())[0]["loss"]
    result = fit(method, task, {"lr": 0.05, "max_epochs": 15, "batch_size": 4, "schedule": "constant"}, "dev")
    end = task.evaluate("dev", method.scorer())[0]["loss"]
    assert end == pytest.approx(-result.best_value)
    # random 0.02-init LM heads cap how far the loss can fall (~ln vocab); a disconnected prefix would not move it
    assert end < start - 0.2, (start, end, result.losses)


@pytest.mark.parametrize("arch", ["albert", "t5"])
def test_hook_gives_the_same_scores_under_eager_and_sdpa_attention(arch):
    outs = []
    for impl in ("sdpa", "eager"):
        model = tiny(arch)
        model.set_attn_implementation(impl)
        prompts = DeepPrompts(model, 3, reparameterize=False).eval()  # same init: tiny() reseeds
        with torch.no_grad():
            outs.append(target_logits(model, replace(toy_batch(arch), forward_patch=prompts.patch())))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
