"""PET's training losses beyond plain cross-entropy (timoschick/pet ``pet/task_helpers.py``, ``pet/wrapper.py``).

- :func:`batch_hinge_loss`: COPA as ``CopaTaskHelper.train_step`` computes it: the mean token
  cross-entropy of every correct choice in the batch ``CE+`` and of every wrong one ``CE-`` (one
  ``CrossEntropyLoss`` each over all their target tokens), then ``max(0, 1 + CE+ - CE-)``.
- :func:`hinge_loss`: ReCoRD's form. Per example, the correct choice's token cross-entropy ``CE+``
  against every wrong choice's ``CE-``: ``sum_wrong max(0, 1 + CE+ - CE-)``, averaged over the batch.
  Option scores here are summed token log-probabilities, i.e. ``-CE``.
- :func:`mask_for_mlm` + :func:`mixed_loss`: the auxiliary masked-LM loss on unlabeled examples
  (``--lm_training``): 15% of the non-special tokens are chosen; of those 80% become the mask
  token, 10% a random token, 10% stay; the loss is ``alpha * task + (1 - alpha) * mlm`` with PET's
  ``alpha = 0.9999`` (the MLM term weighs ``1e-4``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
