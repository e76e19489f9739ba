"""PET's auxiliary masked-LM loss on unlabeled examples (``trainer.aux_mlm_weight``; PET: 1e-4).

Each training step draws the next ``trainer.unlabeled_batch_size`` unlabeled examples (reshuffled
when exhausted, as PET's iterator restarts), renders them with the run's pattern (its own mask
included), masks them with :func:`bench.superglue.losses.mask_for_mlm` and takes the backbone's
masked-LM loss; the step's loss is ``(1 - w) * task + w * mlm``. ``trainer.aux_mlm_masking: pet`` masks as
PET's ``_mask_tokens`` does instead (:func:`bench.superglue.losses.pet_mask_tokens`: inputs padded to
``task.max_length``, only [CLS]/[SEP] exempt, so padding and the pattern's mask can be picked; item G).
FewGLUE's unlabeled files are
missing here for BoolQ, CB, RTE and ReCoRD: the run then trains without the term and says so in
its record (``extra.fit.aux_mlm``).
"""

from __future__ import annotations

import logging

import torch

from bench.backbones.scoring import pad_batch
from bench.errors import ConfigError, DataError
from bench.superglue.losses import mask_for_mlm, mlm_loss, pet_mask_tokens

log = logging.getLogger(__name__)
UNLABELED_SOURCE = "https://github.com/timoschick/fewglue (FewGLUE/<task>/unlabeled.jsonl)"
MASKINGS = ("suite", "pet")  # trainer.aux_mlm_masking


class UnlabeledLM:
    """Batches of pattern-rendered unlabeled examples and their masked-LM loss."""

    def __init__(self, task, batch_size: int, seed: int) -> None:
        self.task, self.batch_size = task, int(batch_size)
        self.masking = str((task.cfg.get("trainer") or {}).get("aux_mlm_masking") or "suite")
        if self.masking not in MASKINGS:
            raise ConfigError(f"trainer.aux_mlm_masking={self.masking!r}: use one of {', '.join(MASKINGS)}")
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        try:
            examples = task.examples("unlabeled")
        except DataError as err:
            self.items, self.status = [], f"unavailable: {err.args[0]} (source with network: {UNLABELED_SOURCE})"
            log.warning("%s: auxiliary MLM loss off: no unlabeled data", task.task)
            return
        self.items = [task._render(ex, 1).input_ids for ex in examples]
        self.status = f"on: {len(self.items)} unlabeled examples, batch {self.batch_size}, masking {self.masking}"

    @property
    def available(self) -> bool:
        return bool(self.items)

    def next_batch(self) -> list[list[int]]:
        while len(self.order) < self.batch_size:  # reshuffled passes over the unlabeled set, as PET's restarts
            self.order += torch.randperm(len(self.items), generator=self.generator).tolist()
        chosen, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return [self.items[i] for i in chosen]

    def loss(self) -> torch.Tensor:
        tok, backbone = self.task.tok, self.task.backbone
        seqs = self.next_batch()
        if self.masking == "pet":  # PET pads to max_seq_length and exempts [CLS]/[SEP] only
            inputs, labels, attention = pet_masked_batch(seqs, self.task.max_length, self.task.pad_id, tok,
                                                         self.generator)
            kwargs = {"input_ids": inputs.to(backbone.device), "attention_mask": attention.to(backbone.device)}
            return mlm_loss(backbone.model(**kwargs).logits, labels.to(backbone.device))
        base = pad_batch(seqs, [[0]] * len(seqs), self.task.pad_id)
        special = torch.tensor([tok.get_special_tokens_mask(s, already_has_special_tokens=True) +
                                [1] * (base.input_ids.shape[1] - len(s)) for s in seqs], dtype=torch.bool)
        inputs, labels = mask_for_mlm(base.input_ids.cpu(), special, tok.mask_token_id, len(tok), self.generator)
        kwargs = {"input_ids": inputs.to(backbone.device), "attention_mask": base.attention_mask.to(backbone.device)}
        logits = backbone.model(**kwargs).logits
        return mlm_loss(logits, labels.to(backbone.device))


def pet_masked_batch(seqs: list[list[int]], max_length: int, pad_id: int, tok,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PET's unlabeled batch: each input padded to ``max_length`` (attention 0 there), masked by
    :func:`pet_mask_tokens` with only the tokenizer's [CLS] / [SEP] exempt (PET's slow tokenizers'
    ``get_special_tokens_mask``): (masked ids, labels, attention mask)."""
    ids = torch.tensor([s[:max_length] + [pad_id] * (max_length - len(s[:max_length])) for s in seqs])
    attention = (torch.arange(max_length)[None, :] < torch.tensor([min(len(s), max_length) for s in seqs])[:, None])
    ends = sorted({tok.cls_token_id, tok.sep_token_id} - {None})
    special = torch.isin(ids, torch.tensor(ends))
    inputs, labels = pet_mask_tokens(ids, special, tok.mask_token_id, len(tok), generator)
    return inputs, labels, attention.long()
