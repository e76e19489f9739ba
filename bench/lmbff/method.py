"""``lmbff_demo``: LM-BFF's prompt-based fine-tuning with demonstrations (Gao et al. 2021, §5).

Every backbone weight is tuned as in ``pet`` (cross-entropy over the label words' logits at the
mask). Each input gets one demonstration per label, sampled from the training set among the
examples most similar to it (``filter_rate`` of each label's candidates by Sentence-BERT cosine
similarity; ``filter_rate: null`` samples from every training example), each written as the
template with its label word in the mask slot and concatenated after the input (LM-BFF). Training
draws a new set every step; evaluation averages the label-word logits over ``num_sample`` sets.
The LM-BFF runner (``bench.lmbff.runner``) does the sampling and rendering; this class only
declares the method and carries its settings.
"""

from __future__ import annotations

from bench.errors import ConfigError
from bench.methods.pet import PatternTuning


class PromptDemoTuning(PatternTuning):
    name = "lmbff_demo"
    uses_demonstrations = True
    k = 0  # demonstrations per input: per_label x the task's labels (the task sets it; records count against it)

    def __init__(self, num_sample: int = 16, filter_rate: float | None = 0.5, per_label: int = 1,
                 encoder_path: str | None = None, decoding: str = "most_confident") -> None:
        super().__init__(decoding)
        if int(num_sample) < 1 or int(per_label) < 1:
            raise ConfigError(f"lmbff_demo: num_sample and per_label must be >= 1, got {num_sample}, {per_label}")
        if filter_rate is not None and not 0 < float(filter_rate) <= 1:
            raise ConfigError(f"lmbff_demo: filter_rate must be in (0, 1] or null, got {filter_rate}")
        self.num_sample, self.per_label = int(num_sample), int(per_label)
        self.filter_rate = None if filter_rate is None else float(filter_rate)
        self.encoder_path = encoder_path
