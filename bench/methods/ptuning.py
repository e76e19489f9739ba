"""``ptuning`` (Liu et al. 2021, P-Tuning v1): pseudo tokens anywhere in the template, reparameterised.

The template places the pseudo tokens (``[P:3] [X] [P:3] [Y] [P:3]``; anchors ``[A:?]`` stay real
words); their vectors come from a prompt encoder (``lstm`` | ``mlp`` | ``identity``, see
:mod:`bench.methods.prompt_encoders`) run over all of them as one sequence. The backbone is frozen
(LAMA) or tuned at its own learning rate ``trainer.backbone_lr`` (``tunes_backbone: true``, the
SuperGLUE / FewGLUE setting). The encoder is sized from the template, so it is built by
``adapt_template``; ``setup`` drops any previous one (a fresh encoder per LAMA relation).
"""

from __future__ import annotations

from bench.errors import ConfigError
from bench.methods.soft import SoftPromptMethod
from bench.prompts.template import Soft, Target, Template


class PTuning(SoftPromptMethod):
    """P-Tuning's prompt encoder over the template's ``[P]`` slots."""

    name = "ptuning"

    def __init__(self, encoder: str = "lstm", hidden_size: int | None = None, dropout: float = 0.0,
                 mlp_layers: int = 2, num_prompts: int = 1, tunes_backbone: bool = False,
                 backbone_dropout: bool = False) -> None:
        super().__init__(encoder=encoder, num_prompts=num_prompts, hidden_size=hidden_size, dropout=dropout,
                         mlp_layers=mlp_layers, tunes_backbone=tunes_backbone, backbone_dropout=backbone_dropout)

    def adapt_template(self, template: Template) -> Template:
        if not template.num_soft:
            raise ConfigError(f"ptuning needs pseudo-token slots [P:n] in the template, got {template.text!r} "
                              "(use template=ptuning_lama, or method=prompt_tuning to prepend a prompt)")
        if self.backbone.family == "clm":
            target = next(i for i, seg in enumerate(template.segments) if isinstance(seg, Target))
            if any(isinstance(seg, Soft) for seg in template.segments[target + 1 :]):
                raise ConfigError(f"template {template.text!r}: a left-to-right model never sees pseudo tokens after "
                                  "[Y] (the input ends at the target); give the last block 0 tokens")
        if self.encoder is None or self.encoder.num_tokens != template.num_soft:
            self.build_encoder(template.num_soft)
        return template
