"""``prompt_tuning`` (Lester et al. 2021): trainable vectors prepended to the input of a frozen model.

The prompt is ``[P:length]`` put in front of the task's discrete template at render time
(:func:`bench.methods.soft.with_prepended_prompt`), so it uses the same pseudo-token slots as
P-Tuning; for T5 it is the encoder input only. Initialisations (google-research/prompt-tuning):

- ``random``: uniform in [-0.5, 0.5] (the paper's random-uniform init);
- ``vocab``: embeddings of token ids drawn without replacement from the first ``vocab_population``
  ids (5,000: sentencepiece vocabularies are frequency-ordered; null draws from the whole vocab);
- ``text``: embeddings of ``init_text`` (no special tokens), repeated or cut to the length (as PEFT);
- ``labels``: the mean embedding of each label word's tokens first, the rest as ``vocab``.

``form``: ``cloze`` (the label word at the template's mask / T5 sentinel) or ``text2text`` (Lester's
T5 setting: the decoder produces the label string and ``</s>``; :mod:`bench.prompts.text2text`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bench.errors import ConfigError
from bench.methods.prompt_encoders import PromptEncoder
from bench.methods.soft import SoftPromptMethod, input_embeddings, with_prepended_prompt
from bench.prompts.template import Template
from bench.prompts.verbalizer import target_token_ids

INITS = ("random", "vocab", "text", "labels")
FORMS = ("cloze", "text2text")


class PromptTuning(SoftPromptMethod):
    """``length`` prompt vectors (an ``identity`` encoder), ``num_prompts`` of them for ensembles."""

    name = "prompt_tuning"

    def __init__(self, length: int = 20, init: str = "vocab", init_text: str | None = None,
                 init_labels: Sequence[str] | None = None, vocab_population: int | None = 5000,
                 num_prompts: int = 1, backbone_dropout: bool = False, form: str = "cloze") -> None:
        super().__init__(encoder="identity", num_prompts=num_prompts, backbone_dropout=backbone_dropout)
        if form not in FORMS:
            raise ConfigError(f"prompt_tuning form {form!r} unknown; expected one of {', '.join(FORMS)}")
        self.form = form  # text2text: T5's decoder writes the label string (bench.prompts.text2text)
        if init not in INITS:
            raise ConfigError(f"prompt_tuning init {init!r} unknown; expected one of {', '.join(INITS)}")
        if init == "text" and not init_text:
            raise ConfigError("prompt_tuning init 'text' needs init_text")
        if init == "labels" and not init_labels:
            raise ConfigError("prompt_tuning init 'labels' needs init_labels (the class-label words)")
        self.length, self.init = int(length), init
        self.init_text, self.init_labels = init_text, list(init_labels or [])
        self.vocab_population = vocab_population

    def setup(self, backbone) -> None:
        super().setup(backbone)
        self.build_encoder(self.length)

    def adapt_template(self, template: Template) -> Template:
        return with_prepended_prompt(template, self.length, self.start_space)

    def saved_prompt(self) -> torch.Tensor | None:
        """The vectors a run keeps beside its record (:mod:`bench.methods.prompt_store`): ``(length, dim)``
        float32 on the CPU, for one prompt on a frozen backbone; None otherwise (nothing a prompt alone restores)."""
        if self.encoder is None or self.num_prompts != 1 or self.tunes_backbone:
            return None
        return self.prompt_vectors().detach().to("cpu", torch.float32).clone()

    def load_prompts(self, prompts: Sequence[torch.Tensor]) -> None:
        """Fill the ``num_prompts`` prompts with saved ones, in order (an ensemble of runs' prompts)."""
        if self.encoder is None:
            raise ConfigError("prompt_tuning: call setup(backbone) before loading prompts")
        if len(prompts) != self.num_prompts:
            raise ConfigError(f"prompt_tuning has num_prompts={self.num_prompts} but {len(prompts)} prompts were given")
        for k, vectors in enumerate(prompts):
            if tuple(vectors.shape) != (self.length, self.dim):
                raise ConfigError(f"saved prompt {k} has shape {tuple(vectors.shape)}, this method needs "
                                  f"({self.length}, {self.dim}) (method.component.length, the model's embedding size)")
        with torch.no_grad():
            weight = self.encoder.embedding.weight
            weight.copy_(torch.cat([v.to(weight.device, weight.dtype) for v in prompts]))

    # initialisation --------------------------------------------------------------------------
    def _sampled_ids(self, count: int, vocab_size: int) -> torch.Tensor:
        population = min(int(self.vocab_population or vocab_size), vocab_size)
        if count > population:  # more tokens than candidates: draw with replacement
            return torch.randint(0, population, (count,))
        return torch.randperm(population)[:count]

    def _text_ids(self) -> list[int]:
        ids = self.backbone.tokenizer.encode(self.init_text, add_special_tokens=False)
        if not ids:
            raise ConfigError(f"prompt_tuning init_text {self.init_text!r} has no tokens")
        return (ids * (self.length // len(ids) + 1))[: self.length]

    def init_encoder(self, encoder: PromptEncoder) -> None:
        table = input_embeddings(self.backbone.model).weight.detach().float().cpu()
        rows = []
        for _ in range(self.num_prompts):
            if self.init == "random":
                rows.append(torch.empty(self.length, self.dim).uniform_(-0.5, 0.5))
            elif self.init == "vocab":
                rows.append(table[self._sampled_ids(self.length, table.shape[0])])
            elif self.init == "text":
                rows.append(table[torch.tensor(self._text_ids())])
            else:
                rows.append(self._label_rows(table))
        with torch.no_grad():
            encoder.embedding.weight.copy_(torch.cat(rows))

    def _label_rows(self, table: torch.Tensor) -> torch.Tensor:
        prompt = table[self._sampled_ids(self.length, table.shape[0])].clone()
        for i, word in enumerate(self.init_labels[: self.length]):
            ids = target_token_ids(word, self.backbone.tokenizer, prefix_space=True)
            prompt[i] = table[torch.tensor(ids)].mean(dim=0)
        return prompt
