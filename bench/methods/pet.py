"""``pet``: prompt-oriented fine-tuning (Schick & Schütze 2021, PET without distillation).

Every backbone weight, LM head included, is tuned through a pattern (template) and a verbalizer.
The classification runner computes PET's loss: cross-entropy over the label words' logits at the
mask (several words per label are averaged, as PET's ``m2c`` tensor does). Candidates of several
tokens (COPA, ReCoRD, multi-token label words) use one mask per token
(:mod:`bench.prompts.multitoken`): training scores a candidate by the sum of its tokens'
log-probabilities from one pass; inference fills the most confident mask first (``decoding``).
PET's auxiliary MLM loss (``trainer.aux_mlm_weight``, :mod:`bench.superglue.aux_mlm`), its ensemble and
distillation (:mod:`bench.superglue.pet_stage`, :mod:`bench.superglue.distill`) and iPET
(:mod:`bench.superglue.ipet`) run through the SuperGLUE runner; this class is the pattern model.

``form: text2text`` (T5 only) tunes every weight on the text-to-text target instead: the decoder writes the
label string (:mod:`bench.prompts.text2text`), the "Model Tuning" baseline of Lester et al. (2021).
"""

from __future__ import annotations

from bench.errors import ConfigError
from bench.methods.base import Method
from bench.prompts.multitoken import STRATEGIES

FORMS = ("cloze", "text2text")  # as prompt_tuning's: the label word at the mask | the decoder writes the label string


class PatternTuning(Method):
    """All weights trainable; scores are vocabulary logits at the template's mask(s)."""

    name = "pet"
    trains = True
    tunes_backbone = True
    output_space = "vocab"

    def __init__(self, decoding: str = "most_confident", form: str = "cloze") -> None:
        if decoding not in STRATEGIES:
            raise ConfigError(f"pet: unknown decoding {decoding!r}; expected one of {', '.join(STRATEGIES)}")
        if form not in FORMS:
            raise ConfigError(f"pet: unknown form {form!r}; expected one of {', '.join(FORMS)}")
        self.decoding = decoding
        self.form = form  # text2text: T5's decoder writes the label string, every weight tuned (Lester's Model Tuning)
        if form == "text2text":
            self.name = "model_tuning"  # as conf/method/model_tuning.yaml names it (logs, error messages)

    def setup(self, backbone) -> None:
        super().setup(backbone)
        backbone.model.requires_grad_(True)
        backbone.model.eval()
