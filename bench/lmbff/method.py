"""``lmbff_demo``: LM-BFF's prompt-based fine-tuning with demonstrations (Gao et al. 2021, §5), and
LM-BFF's own versions of ``pet`` and ``finetune`` (untied LM head; N(0, 0.02) classifier head).

Every backbone weight is tuned as in ``pet`` (cross-entropy over the label words' logits at the
mask), the LM head's output matrix untied from the embeddings as in LM-BFF. Each input gets one
demonstration per label, sampled from the training set among the examples most similar to it
(``filter_rate`` of each label's candidates by Sentence-BERT cosine similarity; ``filter_rate:
null`` samples from every training example), each written as the template with its label word in
the mask slot and concatenated after the input (LM-BFF). Training draws a new set every step;
evaluation averages the label-word logits over ``num_sample`` sets. The LM-BFF runner
(``bench.lmbff.runner``) does the sampling and rendering; these classes only declare the methods.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import ConfigError
from bench.methods.finetune import FineTune
from bench.methods.pet import PatternTuning

HEAD_INITS = ("normal", "torch")


def untie_lm_head(model: nn.Module) -> bool:
    """Give the LM head an output matrix of its own, a copy of the tied input embeddings; True if it was tied.

    LM-BFF's ``RobertaForPromptFinetuning`` (``src/models.py``) builds ``RobertaLMHead`` without tying it:
    its ``decoder.weight`` is loaded from the checkpoint (equal to the embeddings) and then trained apart.
    """
    out, emb = model.get_output_embeddings(), model.get_input_embeddings()
    if out is None or emb is None or out.weight is not emb.weight:
        return False
    out.weight = nn.Parameter(emb.weight.detach().clone(), requires_grad=emb.weight.requires_grad)
    model.config.tie_word_embeddings = False  # nothing may tie them again (e.g. a resize)
    return True


class LMBFFPatternTuning(PatternTuning):
    """``pet`` as LM-BFF runs it: every weight tuned, the LM head's output matrix untied from the embeddings
    (``untie_lm_head: false`` keeps the suite's tied head). The method name stays ``pet``."""

    def __init__(self, decoding: str = "most_confident", untie_lm_head: bool = True) -> None:
        super().__init__(decoding)
        self.untie_lm_head = bool(untie_lm_head)

    def setup(self, backbone) -> None:
        super().setup(backbone)
        if self.untie_lm_head and backbone.family == "mlm":
            untie_lm_head(backbone.model)


class LMBFFFineTune(FineTune):
    """``finetune`` as LM-BFF runs it (``RobertaForSequenceClassification``): the head's linear layers start from
    N(0, initializer_range = 0.02) weights and zero biases (transformers' ``init_weights``); ``head_init: torch``
    keeps PyTorch's default initialisation. The method name stays ``finetune``."""

    def __init__(self, dropout: float = 0.1, hidden_layer: bool = True, pool: str = "auto", head: str = "suite",
                 init: str = "torch", freeze_backbone: bool = False, head_init: str = "normal") -> None:
        super().__init__(dropout, hidden_layer, pool, head, init, freeze_backbone)
        if head_init not in HEAD_INITS:
            raise ConfigError(f"finetune: head_init must be one of {', '.join(HEAD_INITS)}, got {head_init!r}")
        self.head_init = head_init

    def set_num_labels(self, n_out: int) -> None:
        super().set_num_labels(n_out)
        if self.head_init == "normal":
            std = float(getattr(self.backbone.model.config, "initializer_range", 0.02))
            with torch.no_grad():
                for module in self.head.modules():
                    if isinstance(module, nn.Linear):
                        module.weight.normal_(0.0, std)
                        if module.bias is not None:
                            module.bias.zero_()


class PromptDemoTuning(LMBFFPatternTuning):
    name = "lmbff_demo"
    uses_demonstrations = True
    k = 0  # demonstrations per input: per_label x the task's labels (the task sets it; records count against it)

    def __init__(self, num_sample: int = 16, filter_rate: float | None = 0.5, per_label: int = 1,
                 encoder_path: str | None = None, decoding: str = "most_confident", untie_lm_head: bool = True) -> None:
        super().__init__(decoding, untie_lm_head)
        if int(num_sample) < 1 or int(per_label) < 1:
            raise ConfigError(f"lmbff_demo: num_sample and per_label must be >= 1, got {num_sample}, {per_label}")
        if filter_rate is not None and not 0 < float(filter_rate) <= 1:
            raise ConfigError(f"lmbff_demo: filter_rate must be in (0, 1] or null, got {filter_rate}")
        self.num_sample, self.per_label = int(num_sample), int(per_label)
        self.filter_rate = None if filter_rate is None else float(filter_rate)
        self.encoder_path = encoder_path
