"""Deep prompts: trainable key/value prefixes of length L in every attention layer of a frozen model.

Shared by ``prefix_tuning`` (Li & Liang 2021) and ``ptuning_v2`` (Liu et al. 2022).

Parameters, per site group (``layers`` for encoder-only/decoder-only models; ``encoder``,
``decoder`` (self-attention) and ``cross`` for T5, each with its own table or MLP as in Li & Liang's
encoder-decoder code), with ``n`` layers, kv width ``E = heads * head_dim`` and token width ``d``:

- table: ``Embedding(L, n*2*E)``, ``L*n*2*E`` parameters;
- reparameterised: ``Embedding(L, d) -> Linear(d, mid) -> tanh -> Linear(mid, n*2*E)``,
  ``L*d + d*mid + mid + mid*n*2*E + n*2*E`` parameters; ``merge()`` replaces it by the table it
  computes (same prefixes, no MLP). The last axis is laid out ``[layer][key|value][head][dim]``
  (PEFT's and P-Tuning v2's layout).

How the prefixes enter each family in transformers 5.x:

- gpt2: ``past_key_values=DynamicCache`` holding the prefixes; 2-D mask extended by L ones.
- bert, roberta: same (their self-attention updates any cache it is given, decoder or not).
- albert: its attention takes no cache at all, so each attention module dispatches to a
  registered attention function (``bench_deep_prompts``) that concatenates the layer's prefix to
  the keys/values and calls the original implementation (sdpa/eager); the prefix arrives as a
  forward kwarg, which ALBERT passes down to the attention call. ALBERT shares one layer's weights
  across depth; the prefixes are still per layer (one per attention call, in call order).
- t5: encoder self-attention by the same hook (the T5 encoder drops any cache), with the relative
  position bias recomputed as T5 computes it for a cache of length L (queries at L..L+n-1);
  decoder self-attention and cross-attention through an ``EncoderDecoderCache`` (cross keys are
  ``[prefix; encoder states]``, the encoder mask is extended by L).

The hook gives each served attention module a private config copy naming ``bench_deep_prompts``
(the model's own config, hence its mask creation, is untouched); without a prefix the hook calls
the original implementation unchanged. Switch attention implementations before setup, not after.

Positions: with ``shift_positions`` (default, as in Li & Liang's GPT-2 code, P-Tuning v2's BERT
code and PEFT, where a cache of length L offsets positions) the real tokens get positions
L, L+1, ...; with ``shift_positions=False`` they keep 0, 1, ... (absolute-position models only).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, DynamicCache, EncoderDecoderCache
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from bench.errors import ConfigError

ARCHES = ("bert", "roberta", "albert", "gpt2", "t5")
T5_SITES = ("encoder", "decoder", "cross")
INJECTIONS = {"bert": ("cache", "hook"), "roberta": ("cache", "hook"), "albert": ("hook",), "gpt2": ("cache",),
              "t5": ("mixed",)}  # t5: encoder by hook, decoder by cache
HOOK_NAME = "bench_deep_prompts"
_MODEL_TYPES = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta", "albert": "albert", "gpt2": "gpt2",
                "t5": "t5", "mt5": "t5"}


@dataclass(frozen=True)
class SiteGroup:
    """A set of attention layers that receive prefixes."""

    name: str
    n_layers: int
    n_heads: int
    head_dim: int

    @property
    def width(self) -> int:
        return self.n_heads * self.head_dim


def arch_of(model: nn.Module) -> str:
    model_type = getattr(model.config, "model_type", None)
    if model_type not in _MODEL_TYPES:
        raise ConfigError(f"deep prompts support {', '.join(ARCHES)} backbones, not model type {model_type!r}")
    return _MODEL_TYPES[model_type]


def site_groups(model: nn.Module, t5_sites: Iterable[str] = T5_SITES) -> list[SiteGroup]:
    """The prefixed attention sites of ``model``; ALBERT counts every (shared) attention call."""
    c, arch = model.config, arch_of(model)
    if arch in ("bert", "roberta"):
        return [SiteGroup("layers", c.num_hidden_layers, c.num_attention_heads, c.hidden_size // c.num_attention_heads)]
    if arch == "albert":
        calls = c.num_hidden_layers * c.inner_group_num
        return [SiteGroup("layers", calls, c.num_attention_heads, c.hidden_size // c.num_attention_heads)]
    if arch == "gpt2":
        return [SiteGroup("layers", c.n_layer, c.n_head, c.n_embd // c.n_head)]
    sites = list(t5_sites)
    if not sites or any(s not in T5_SITES for s in sites) or len(set(sites)) != len(sites):
        raise ConfigError(f"t5_sites must be a non-empty subset of {list(T5_SITES)}, got {sites}")
    layers = {"encoder": c.num_layers, "decoder": c.num_decoder_layers, "cross": c.num_decoder_layers}
    return [SiteGroup(s, layers[s], c.num_heads, c.d_kv) for s in T5_SITES if s in sites]


def token_dim_of(model: nn.Module) -> int:
    c = model.config
    return int(getattr(c, "d_model", None) or getattr(c, "n_embd", None) or c.hidden_size)


class PrefixEncoder(nn.Module):
    """One group's prefixes as a (n_layers, 2, heads, L, head_dim) tensor."""

    def __init__(self, group: SiteGroup, length: int, token_dim: int, reparameterize: bool, mid_dim: int) -> None:
        super().__init__()
        self.group, self.length = group, length
        out = group.n_layers * 2 * group.width
        self.embedding = nn.Embedding(length, token_dim if reparameterize else out)
        self.transform = (nn.Sequential(nn.Linear(token_dim, mid_dim), nn.Tanh(), nn.Linear(mid_dim, out))
                          if reparameterize else None)

    @property
    def reparameterized(self) -> bool:
        return self.transform is not None

    def flat(self) -> torch.Tensor:
        """(L, n_layers*2*width): the table, or the MLP applied to the prefix embeddings."""
        x = self.embedding.weight
        return x if self.transform is None else self.transform(x)

    def forward(self) -> torch.Tensor:
        g, n = self.group, self.length
        return self.flat().view(n, g.n_layers * 2, g.n_heads, g.head_dim).permute(1, 2, 0, 3).reshape(
            g.n_layers, 2, g.n_heads, n, g.head_dim)

    def merged(self) -> PrefixEncoder:
        """A table-only encoder holding exactly the prefixes this one computes."""
        table = PrefixEncoder(self.group, self.length, 0, reparameterize=False, mid_dim=0)
        with torch.no_grad():
            table.embedding.weight.copy_(self.flat())
        return table.to(self.embedding.weight.device)


# hook-based injection -----------------------------------------------------------------------------

class LayerFeed:
    """Per-forward state of the hook: the next layer's prefix, and T5's extended position bias."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]], length: int) -> None:
        self.layers, self.length, self.calls = layers, length, 0
        self.position_bias: torch.Tensor | None = None

    def extend(self, module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.calls >= len(self.layers):
            raise RuntimeError(f"deep prompts: attention called more than {len(self.layers)} times in one forward "
                               "(gradient checkpointing re-runs layers and is not supported)")
        k, v = self.layers[self.calls]
        self.calls += 1
        if kwargs.get("position_bias") is not None:  # T5: bias as T5 computes it for a cache of length L
            if self.position_bias is None:
                if not getattr(module, "has_relative_attention_bias", False):
                    raise RuntimeError("deep prompts: T5 encoder layer 0 must be the first attention call")
                q_len = query.shape[-2]
                self.position_bias = module.compute_bias(q_len, q_len + self.length, device=query.device,
                                                         past_seen_tokens=self.length)
            kwargs["position_bias"] = self.position_bias
        return torch.cat([k.to(key.dtype), key], dim=-2), torch.cat([v.to(value.dtype), value], dim=-2)


def _prefix_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, **kwargs: Any):
    feed: LayerFeed | None = kwargs.pop("bench_prefix", None)
    if feed is not None:
        key, value = feed.extend(module, query, key, value, kwargs)
    base = ALL_ATTENTION_FUNCTIONS.get_interface(module._bench_base_attn, module._bench_eager)
    return base(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(HOOK_NAME, _prefix_attention)


def install_hook(modules: Iterable[nn.Module]) -> int:
    """Route these attention modules through the prefix hook (idempotent; no prefix = unchanged math)."""
    count = 0
    for module in modules:
        count += 1
        if getattr(module, "_bench_base_attn", None) is not None:
            continue
        module._bench_base_attn = module.config._attn_implementation
        module._bench_eager = sys.modules[type(module).__module__].eager_attention_forward
        config = copy.copy(module.config)  # private copy: the model's mask creation keeps its own setting
        config._attn_implementation = HOOK_NAME
        module.config = config
    return count


def hooked_modules(model: nn.Module, arch: str) -> list[nn.Module]:
    """Distinct self-attention modules the hook serves (ALBERT: usually one, shared by all layers)."""
    if arch == "t5":
        return [block.layer[0].SelfAttention for block in model.encoder.block]
    base = model.base_model
    wanted = {"bert": "BertSelfAttention", "roberta": "RobertaSelfAttention", "albert": "AlbertAttention"}[arch]
    return [m for m in base.modules() if type(m).__name__ == wanted]


# the forward patch ------------------------------------------------------------------------------

def _with_prefix_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    return torch.cat([mask.new_ones(mask.shape[0], length), mask], dim=1)


def _expanded(prefix: torch.Tensor, batch: int, dtype: torch.dtype,
              dropout: nn.Module | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, (keys, values) expanded to the batch; ``dropout`` then draws one mask per example."""
    def one(t: torch.Tensor) -> torch.Tensor:
        t = t.to(dtype).expand(batch, -1, -1, -1)
        return dropout(t) if dropout is not None else t

    return [(one(layer[0]), one(layer[1])) for layer in prefix]


def _cache(prefix: torch.Tensor, batch: int, dtype: torch.dtype, dropout: nn.Module | None = None) -> DynamicCache:
    return DynamicCache(_expanded(prefix, batch, dtype, dropout))


class DeepPrefix:
    """A ``ForwardPatch`` for one scorer call: adds the prefixes to every backbone call it patches."""

    def __init__(self, model: nn.Module, arch: str, prefixes: dict[str, torch.Tensor], length: int,
                 injection: str, shift_positions: bool, dropout: nn.Module | None = None) -> None:
        self.model, self.arch, self.prefixes, self.length = model, arch, prefixes, length
        self.dropout = dropout  # per-example prefix dropout, applied after the batch expand (P-Tuning v2's place)
        self.injection, self.shift = injection, shift_positions
        self.dtype = next(model.parameters()).dtype

    def __call__(self, part: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(kwargs)
        if part == "decoder":
            return self._decoder(kwargs)
        group = "encoder" if part == "encoder" else "layers"
        if group not in self.prefixes:
            return kwargs
        inputs = kwargs.get("input_ids", kwargs.get("inputs_embeds"))
        batch, seq = inputs.shape[0], inputs.shape[1]
        kwargs["attention_mask"] = _with_prefix_mask(kwargs["attention_mask"], self.length)
        prefix = self.prefixes[group]
        if self.injection == "cache" and part != "encoder":
            kwargs["past_key_values"] = _cache(prefix, batch, self.dtype, self.dropout)
        else:
            kwargs["bench_prefix"] = LayerFeed(_expanded(prefix, batch, self.dtype, self.dropout), self.length)
        positions = self._positions(kwargs, batch, seq, inputs.device)
        if positions is not None:
            kwargs["position_ids"] = positions
        return kwargs

    def _positions(self, kwargs: dict[str, Any], batch: int, seq: int, device: torch.device) -> torch.Tensor | None:
        """Explicit position ids where the native behaviour differs from the requested one."""
        if self.arch == "t5" or (self.injection == "cache" and self.shift):
            return None  # relative positions / native cache offset
        offset = self.length if self.shift else 0
        limit = getattr(self.model.config, "max_position_embeddings", None) or self.model.config.n_positions
        if self.arch == "roberta":
            if kwargs.get("input_ids") is None:
                return None  # RoBERTa numbers inputs_embeds itself, never offset by a cache
            emb = self.model.base_model.embeddings
            positions = emb.create_position_ids_from_input_ids(kwargs["input_ids"], emb.padding_idx, offset)
        else:
            positions = torch.arange(offset, offset + seq, device=device).expand(batch, seq)
        if int(positions.max()) >= limit:
            raise ValueError(f"deep prompts: positions up to {int(positions.max())} exceed the model's {limit} "
                             "(shorter inputs, a shorter prefix or shift_positions=false)")
        return positions

    def _decoder(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "decoder" not in self.prefixes and "cross" not in self.prefixes:
            return kwargs
        batch = kwargs["input_ids"].shape[0]
        self_cache = _cache(self.prefixes["decoder"], batch, self.dtype, self.dropout) if "decoder" in self.prefixes \
            else DynamicCache()
        cross_cache = _cache(self.prefixes["cross"], batch, self.dtype, self.dropout) if "cross" in self.prefixes \
            else DynamicCache()
        cache = EncoderDecoderCache(self_cache, cross_cache)
        for layer in list(cache.is_updated):
            cache.is_updated[layer] = False  # cross keys = [prefix; encoder states], computed this call
        if "cross" in self.prefixes:
            kwargs["encoder_attention_mask"] = _with_prefix_mask(kwargs["encoder_attention_mask"], self.length)
        kwargs["past_key_values"] = cache
        return kwargs


class DeepPrompts(nn.Module):
    """The trainable prefixes of one backbone: one ``PrefixEncoder`` per site group, plus dropout."""

    def __init__(self, model: nn.Module, length: int, reparameterize: bool, mid_dim: int = 512,
                 dropout: float = 0.0, shift_positions: bool = True, t5_sites: Iterable[str] = T5_SITES,
                 injection: str = "auto", dropout_per_example: bool = False, init_std: float | None = None) -> None:
        super().__init__()
        self.arch = arch_of(model)
        self.injection = check_options(self.arch, length, mid_dim if reparameterize else 1, shift_positions,
                                       injection)
        if any(getattr(m, "gradient_checkpointing", False) for m in model.modules()):
            raise ConfigError("deep prompts do not work with gradient checkpointing (layers would run twice)")
        self.length, self.shift_positions = length, shift_positions
        self.groups = site_groups(model, t5_sites)
        token_dim = token_dim_of(model)
        self.encoders = nn.ModuleDict({g.name: PrefixEncoder(g, length, token_dim, reparameterize, mid_dim)
                                       for g in self.groups})
        self.dropout = nn.Dropout(dropout)
        self.dropout_per_example = bool(dropout_per_example)  # False: one mask for the whole batch (before expand)
        if init_std is not None:  # P-Tuning v2: from_pretrained's _init_weights on the missing prefix encoder
            init_normal(self, float(init_std))
        self._model = [model]  # a list keeps the backbone out of this module's parameters and state dict
        if self.injection == "hook" or "encoder" in self.encoders:  # t5 encoder: always the hook
            install_hook(hooked_modules(model, self.arch))

    @property
    def reparameterized(self) -> bool:
        return any(e.reparameterized for e in self.encoders.values())

    def prefixes(self) -> dict[str, torch.Tensor]:
        """Per site group, (n_layers, 2, heads, L, head_dim); dropped out here unless per example."""
        if self.dropout_per_example:
            return {name: encoder() for name, encoder in self.encoders.items()}
        return {name: self.dropout(encoder()) for name, encoder in self.encoders.items()}

    def patch(self) -> DeepPrefix:
        """A forward patch carrying freshly computed prefixes (gradients flow into this module)."""
        return DeepPrefix(self._model[0], self.arch, self.prefixes(), self.length, self.injection,
                          self.shift_positions, self.dropout if self.dropout_per_example else None)

    def merge(self) -> None:
        """Drop the reparameterisation MLPs: keep only the prefix tables they compute."""
        for name in list(self.encoders):
            if self.encoders[name].reparameterized:
                self.encoders[name] = self.encoders[name].merged()


def init_normal(module: nn.Module, std: float) -> None:
    """transformers' ``_init_weights`` for embeddings and linear layers: weights N(0, std), biases 0."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.Embedding | nn.Linear):
                sub.weight.normal_(0.0, std)
            if isinstance(sub, nn.Linear) and sub.bias is not None:
                sub.bias.zero_()


def check_options(arch: str, length: int, mid_dim: int, shift_positions: bool, injection: str) -> str:
    """Validate a deep-prompt configuration for ``arch``; return the injection mechanism."""
    if length < 1:
        raise ConfigError(f"deep prompts need a prefix length >= 1, got {length}")
    if mid_dim < 1:
        raise ConfigError(f"reparameterisation needs mid_dim >= 1, got {mid_dim}")
    if arch == "t5" and not shift_positions:
        raise ConfigError("t5 has relative positions: prefixes always sit before the tokens (shift_positions=true)")
    allowed = INJECTIONS[arch]
    if injection == "auto":
        return allowed[0]
    if injection not in allowed:
        raise ConfigError(f"injection={injection!r} cannot work for {arch}: use one of {['auto', *allowed]}"
                          + (" (ALBERT's attention takes no past_key_values)" if arch == "albert" else ""))
    return injection
