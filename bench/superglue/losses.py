"""PET's training losses beyond plain cross-entropy (timoschick/pet ``pet/task_helpers.py``, ``pet/wrapper.py``).

- :func:`batch_hinge_loss`: COPA as ``CopaTaskHelper.train_step`` computes it: the mean token
  cross-entropy of every correct choice in the batch ``CE+`` and of every wrong one ``CE-`` (one
  ``CrossEntropyLoss`` each over all their target tokens), then ``max(0, 1 + CE+ - CE-)``.
- :func:`pet_record_loss`: ReCoRD as ``RecordTaskHelper.train_step`` computes it on one example: the
  correct candidate's mean token cross-entropy ``CE+`` against every wrong candidate's ``CE-`` (one
  ``CrossEntropyLoss`` per candidate slot over its tokens), ``sum_wrong max(0, 1 + CE+ - CE-)``. PET pads
  every example to the training set's most candidates with all-ignored slots, whose cross-entropy is 0
  under its torch 1.5.0: each such slot adds ``1 + CE+``. The suite averages over a batch's examples
  (PET's helper fails on more than one: docs/fewglue.md).
- :func:`hinge_loss`: the suite's per-example hinge: the same sum, on summed token log-probabilities
  (``-CE`` summed, not averaged, over a candidate's tokens), averaged over the batch.
- :func:`choice_loss`: ``task.choice_loss`` (``hinge``, ``hinge_batch``, ``pet_record``) on a batch of
  multi-token options.
- :func:`mask_for_mlm` + :func:`mixed_loss`: the auxiliary masked-LM loss on unlabeled examples
  (``--lm_training``): 15% of the non-special tokens are chosen; of those 80% become the mask
  token, 10% a random token, 10% stay; the loss is ``alpha * task + (1 - alpha) * mlm`` with PET's
  ``alpha = 0.9999`` (the MLM term weighs ``1e-4``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.superglue.batching import TaskBatch, scatter_options, unit_log_probs

CHOICE_LOSSES = ("ce", "hinge", "hinge_batch", "pet_record")  # task.choice_loss (ce: cross-entropy over the options)


def hinge_loss(option_scores: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """``option_scores``: (n, options) summed log-probabilities (-inf for absent options); labels: (n,)."""
    correct = option_scores.gather(1, labels[:, None])  # -CE+
    wrong = torch.ones_like(option_scores, dtype=torch.bool).scatter(1, labels[:, None], False)
    wrong &= torch.isfinite(option_scores)
    terms = torch.clamp(margin - correct + option_scores, min=0.0)  # 1 + CE+ - CE-
    return torch.where(wrong, terms, torch.zeros_like(terms)).sum(1).mean()


def batch_hinge_loss(unit_log_probs: torch.Tensor, unit_tokens: torch.Tensor, correct: torch.Tensor,
                     margin: float = 1.0) -> torch.Tensor:
    """Per scored choice its summed token log-probs and token count; ``correct``: whether it is the gold one."""
    ce_correct = -unit_log_probs[correct].sum() / unit_tokens[correct].sum()
    ce_wrong = -unit_log_probs[~correct].sum() / unit_tokens[~correct].sum()
    return torch.clamp(margin + ce_correct - ce_wrong, min=0.0)


def pet_record_loss(unit_log_probs: torch.Tensor, unit_tokens: torch.Tensor, unit_owner: torch.Tensor,
                    correct: torch.Tensor, n_examples: int, slots: int = 0, margin: float = 1.0) -> torch.Tensor:
    """Per scored candidate its summed token log-probs, token count, example and whether it is the gold one
    (one per example): per example ``sum_wrong max(0, margin + CE+ - CE-)`` on mean token CEs, plus
    ``max(0, margin + CE+)`` per empty slot up to ``slots`` candidates (PET's padding), then the mean."""
    ce = -unit_log_probs / unit_tokens
    gold = torch.zeros(n_examples, dtype=ce.dtype, device=ce.device).index_put((unit_owner[correct],), ce[correct])
    terms = torch.clamp(margin + gold[unit_owner] - ce, min=0.0).masked_fill(correct, 0.0)
    empty = (slots - torch.bincount(unit_owner, minlength=n_examples)).clamp(min=0).to(ce.dtype)
    return (terms.sum() + (empty * torch.clamp(margin + gold, min=0.0)).sum()) / n_examples


def choice_loss(name: str, scores: torch.Tensor, batch: TaskBatch, slots: int = 0) -> torch.Tensor:
    """``task.choice_loss`` ``name`` on a batch of multi-token options; ``scores``: logits at the target slots;
    ``slots``: ``pet_record``'s candidate slots per example (the training set's most candidates)."""
    n_units = batch.unit_owner.numel()
    unit = unit_log_probs(scores, batch.slot_tokens, batch.slot_owner, n_units)
    tokens = torch.bincount(batch.slot_owner, minlength=n_units).to(unit.dtype)
    correct = batch.unit_option == batch.labels[batch.unit_owner]
    if name == "hinge":
        table = scatter_options(unit, batch.unit_owner, batch.unit_option, batch.n_examples, batch.n_options)
        return hinge_loss(table, batch.labels)
    if name == "hinge_batch":  # PET's COPA: hinge on the batch's mean token CEs
        return batch_hinge_loss(unit, tokens, correct)
    if name == "pet_record":  # PET's ReCoRD: a hinge per wrong candidate on mean token CEs
        return pet_record_loss(unit, tokens, batch.unit_owner, correct, batch.n_examples, slots)
    raise ConfigError(f"task.choice_loss={name!r} is not allowed here; use one of {', '.join(CHOICE_LOSSES)}")


def mask_for_mlm(input_ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int,
                 generator: torch.Generator, probability: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked inputs, labels with -100 where no loss is taken); ``special``: True at specials and padding."""
    labels = input_ids.clone()
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & ~special
    labels[~chosen] = -100
    inputs = input_ids.clone()
    replaced = (torch.rand(input_ids.shape, generator=generator) < 0.8) & chosen
    inputs[replaced] = mask_id
    randomised = (torch.rand(input_ids.shape, generator=generator) < 0.5) & chosen & ~replaced
    inputs[randomised] = torch.randint(vocab_size, input_ids.shape, generator=generator)[randomised]
    return inputs, labels


def pet_mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """PET's ``_mask_tokens`` (``pet/wrapper.py``) with its draws in its order: Bernoulli(0.15) except at
    ``special`` (PET: [CLS]/[SEP] only, so padding and a pattern's mask can be picked), 80% of those become the
    mask, half of the rest a random id. The same seed gives PET's masking (torch 1.5 and today's draw alike)."""
    labels = input_ids.clone()
    chosen = torch.bernoulli(torch.full(labels.shape, 0.15).masked_fill(special, 0.0), generator=generator).bool()
    labels[~chosen] = -100
    inputs = input_ids.clone()
    replaced = torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & chosen
    inputs[replaced] = mask_id
    randomised = torch.bernoulli(torch.full(labels.shape, 0.5), generator=generator).bool() & chosen & ~replaced
    words = torch.randint(vocab_size, labels.shape, dtype=torch.long, generator=generator)
    inputs[randomised] = words[randomised]
    return inputs, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy over the chosen positions (the model's own masked-LM loss)."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def mixed_loss(task_loss: torch.Tensor, lm_loss: torch.Tensor, alpha: float) -> torch.Tensor:
    """PET: ``alpha * task + (1 - alpha) * lm``."""
    return alpha * task_loss + (1.0 - alpha) * lm_loss


def target_token_loss(logits: torch.Tensor, batch, z_loss: float = 0.0) -> torch.Tensor:
    """T5's text-to-text loss (``task.text2text_loss: target``): the summed token cross-entropy of each example's gold
    label string only (T5X ``loss_fn`` with ``loss_normalizing_factor=None``), plus ``z_loss * log(Z)^2`` per token
    (T5X's z-loss, 1e-4 in prompt-tuning's gin). ``logits``: (n_slots, vocab) at every option's target slots."""
    gold_unit = batch.unit_option == batch.labels[batch.unit_owner]
    gold = gold_unit[batch.slot_owner]
    picked = logits.float()[gold]
    log_z = torch.logsumexp(picked, dim=-1)
    nll = log_z - picked.gather(1, batch.slot_tokens[gold][:, None]).squeeze(1)
    return (nll + z_loss * log_z.square()).sum()
