"""Shared machinery of the soft-prompt methods (``prompt_tuning``, ``ptuning``).

A soft prompt lives in the backbone's *input embedding* space (ALBERT: the factorised size E,
not the hidden size H). Rendering puts placeholder ids at the ``[P:n]`` slots of a template; at
scoring time the whole input is embedded with the model's own input embedding and the prompt
vectors are scattered over the placeholder positions (``ScoringBatch.soft_rows/soft_cols``), so
the placeholder id never matters (THUDM/P-tuning swaps it for ``[UNK]`` before embedding; here
it is overwritten). For T5 only the encoder input carries prompts; the decoder is untouched.

Several prompts of equal length (an ensemble, or one prompt per task, Lester et al. 2021) share
one forward pass: an example's ``prompt_index`` picks which block of vectors fills its slots.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from bench.backbones.scoring import ScoringBatch, target_logits
from bench.errors import ConfigError
from bench.methods.base import Method, Scorer
from bench.methods.prompt_encoders import PromptEncoder
from bench.prompts.pieces import tokenizer_info
from bench.prompts.template import Template, parse_template


def input_embeddings(model: nn.Module) -> nn.Embedding:
    """The token embedding the model applies to ``input_ids`` (T5: the shared one, encoder side)."""
    embedding = model.get_input_embeddings()
    if not isinstance(embedding, nn.Embedding):
        raise ConfigError(f"{type(model).__name__}: input embedding is {type(embedding).__name__}, not nn.Embedding")
    return embedding


def with_prepended_prompt(template: Template, n: int, start_space: bool = True) -> Template:
    """``[P:n]`` before ``template``; the text after it renders as it did at the start of the input.

    ``start_space``: whether the tokenizer treats the first word as preceded by a space (the
    rendering rule at the start of a template); the separator keeps that tokenisation unchanged.
    Prompts go after the tokenizer's leading specials ([CLS], <s>); GPT-2 and T5 have none.
    """
    if n < 1:
        raise ConfigError(f"prompt length must be >= 1, got {n}")
    if template.num_soft:
        raise ConfigError(f"template {template.text!r} already has [P] slots; prompt tuning prepends its own "
                          "prompt to a discrete template (use method=ptuning for placed pseudo tokens)")
    text = f"[P:{n}]" + (" " if start_space else "") + template.text
    return parse_template(text, name=template.name)


def embed_batch(model: nn.Module, batch: ScoringBatch, vectors: torch.Tensor) -> ScoringBatch:
    """The batch with ``inputs_embeds``: token embeddings, prompt vectors at the pseudo-token slots."""
    if batch.soft_rows is None:
        raise ConfigError("batch has no pseudo-token slots: render the method's adapted template "
                          "(method.adapt_template) so that [P] slots are marked")
    largest = batch.soft_max_id if batch.soft_max_id is not None else int(batch.soft_ids.max())  # host int: no sync
    if largest >= vectors.shape[0]:
        raise ConfigError(f"batch asks for prompt vector {largest} but the method has "
                          f"{vectors.shape[0]} (prompt_index out of range or template length mismatch)")
    embeds = input_embeddings(model)(batch.input_ids)
    embeds = embeds.index_put((batch.soft_rows, batch.soft_cols), vectors[batch.soft_ids].to(embeds.dtype))
    return dataclasses.replace(batch, inputs_embeds=embeds)


class SoftPromptMethod(Method):
    """A frozen (or tuned) backbone read through prompt vectors produced by a :class:`PromptEncoder`.

    Subclasses decide where the pseudo tokens go (``adapt_template``) and how the encoder starts
    (``init_encoder``). ``num_prompts`` K > 1 keeps K prompts of the same length (ensembles).
    ``backbone_dropout``: keep a frozen backbone in train mode while training (dropout on), as
    THUDM/P-tuning's LAMA trainer does (it calls ``train()`` on the whole model).
    """

    name = "soft"
    trains = True
    changes_template = True

    def __init__(self, encoder: str = "identity", num_prompts: int = 1, hidden_size: int | None = None,
                 dropout: float = 0.0, mlp_layers: int = 2, tunes_backbone: bool = False,
                 backbone_dropout: bool = False) -> None:
        self.encoder_kind, self.num_prompts = encoder, int(num_prompts)
        self.hidden_size, self.dropout, self.mlp_layers = hidden_size, float(dropout), int(mlp_layers)
        self.tunes_backbone, self.backbone_dropout = bool(tunes_backbone), bool(backbone_dropout)
        self.encoder: PromptEncoder | None = None

    def setup(self, backbone) -> None:
        """Attach to ``backbone``: freeze it (unless tuned), forget any previous prompt encoder."""
        super().setup(backbone)
        backbone.model.requires_grad_(self.tunes_backbone)
        backbone.model.eval()
        self.dim = input_embeddings(backbone.model).embedding_dim
        self.encoder = None

    def build_encoder(self, num_tokens: int) -> PromptEncoder:
        """A fresh encoder for prompts of ``num_tokens`` pseudo tokens (float32, on the backbone's device)."""
        encoder = PromptEncoder(self.encoder_kind, num_tokens, self.dim, num_prompts=self.num_prompts,
                                hidden_size=self.hidden_size, dropout=self.dropout, mlp_layers=self.mlp_layers)
        self.init_encoder(encoder)
        self.encoder = encoder.to(self.backbone.device)
        return self.encoder

    def init_encoder(self, encoder: PromptEncoder) -> None:
        """Initialise a new encoder in place (default: PyTorch's module defaults)."""

    def adapt_template(self, template: Template) -> Template:
        """The template this method renders (with its ``[P]`` slots); builds the encoder when needed."""
        raise NotImplementedError

    @property
    def start_space(self) -> bool:
        return tokenizer_info(self.backbone.tokenizer).start_space

    # what is trained -------------------------------------------------------------------------
    def own_modules(self) -> dict[str, nn.Module]:
        return {"prompt_encoder": self.encoder} if self.encoder is not None else {}

    def train_mode(self) -> None:
        super().train_mode()
        if self.backbone_dropout:
            self.backbone.model.train()

    # scoring -------------------------------------------------------------------------------
    def prompt_vectors(self) -> torch.Tensor:
        """All prompt vectors, ``(num_prompts * num_tokens, dim)``, prompt by prompt."""
        if self.encoder is None:
            raise ConfigError(f"{self.name}: no prompt encoder yet; call adapt_template(template) after setup")
        return self.encoder()

    def scorer(self) -> Scorer:
        model = self.backbone.model

        def score(batch: ScoringBatch) -> torch.Tensor:
            vectors = self.prompt_vectors()
            per_row = batch.soft_per_row  # counted on the host when the batch was padded: no device sync
            if per_row is None and batch.soft_rows is not None:
                per_row = tuple(torch.bincount(batch.soft_rows, minlength=batch.input_ids.shape[0]).tolist())
            if per_row is not None and any(n != self.encoder.num_tokens for n in per_row):
                raise ConfigError(f"{self.name}: every example must have {self.encoder.num_tokens} pseudo tokens, "
                                  f"got {sorted(set(per_row))}")
            return target_logits(model, embed_batch(model, batch, vectors))

        return score
