"""Facts rendered with trigger slots; the loss gradient at the triggers; candidates scored in one pass.

A search template is an ordinary template whose pseudo-token slots (``[X] [P:5] [Y] .``) are the
trigger positions: ``bench.prompts.render`` reports them as ``soft_positions``, and here they hold
real token ids (AutoPrompt's ``[T]`` slots, ``replace_trigger_tokens``). The loss is AutoPrompt's
for LAMA: minus the log-probability of the gold object under the full-vocabulary softmax at [Y].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from bench.backbones.scoring import ScoringBatch, target_logits
from bench.lama.evaluation import LamaItem, collate


@dataclasses.dataclass
class TriggerBatch:
    """Padded facts and their gold ids; ``slots`` (rows, cols) of the trigger tokens, row-major."""

    batch: ScoringBatch
    labels: torch.Tensor  # (rows,)
    n_trigger: int

    @classmethod
    def of(cls, items: Sequence[LamaItem], pad_id: int, device: torch.device) -> TriggerBatch:
        n = {len(it.soft_positions) for it in items}
        if len(n) != 1 or 0 in n:
            raise ValueError(f"every fact needs the same number (> 0) of trigger slots, got {sorted(n)}")
        batch = collate(items, pad_id)
        labels = torch.tensor([it.gold_id for it in items], dtype=torch.long)
        return cls(batch.to(device), labels.to(device), n.pop())

    @property
    def rows(self) -> int:
        return int(self.labels.numel())


def filled(tb: TriggerBatch, triggers: torch.Tensor) -> ScoringBatch:
    """The batch repeated once per trigger sequence in ``triggers`` (k, n_trigger), each block filled
    with its tokens: rows ``[j * rows, (j + 1) * rows)`` carry ``triggers[j]``."""
    k, rows = triggers.size(0), tb.rows
    b = tb.batch
    ids = b.input_ids.repeat(k, 1)
    block = torch.arange(k, device=ids.device).repeat_interleave(b.soft_rows.numel())
    slot_rows = b.soft_rows.repeat(k) + block * rows
    ids[slot_rows, b.soft_cols.repeat(k)] = triggers[block, b.soft_ids.repeat(k)]
    offsets = torch.arange(k, device=ids.device).repeat_interleave(b.target_rows.numel()) * rows
    types = b.token_type_ids.repeat(k, 1) if b.token_type_ids is not None else None
    return ScoringBatch(ids, b.attention_mask.repeat(k, 1), b.target_rows.repeat(k) + offsets,
                        b.target_cols.repeat(k), token_type_ids=types)


def gold_logprob(model, tb: TriggerBatch, triggers: torch.Tensor) -> torch.Tensor:
    """(k, rows) log-probability of each fact's gold object with each trigger sequence, one forward pass."""
    with torch.no_grad():
        logits = target_logits(model, filled(tb, triggers))
        logp = F.log_softmax(logits.float(), dim=-1)
        gold = tb.labels.repeat(triggers.size(0))
        return logp.gather(-1, gold[:, None]).view(triggers.size(0), tb.rows)


def trigger_gradient(model, tb: TriggerBatch, trigger: torch.Tensor) -> torch.Tensor:
    """(n_trigger, dim): gradient of the batch's mean loss w.r.t. the trigger input embeddings, summed
    over the batch's rows (AutoPrompt's per-step ``grad.sum(dim=0)``)."""
    batch = filled(tb, trigger[None])
    embeds = model.get_input_embeddings()(batch.input_ids).detach().requires_grad_(True)
    batch.inputs_embeds = embeds
    with torch.enable_grad():
        loss = F.cross_entropy(target_logits(model, batch).float(), tb.labels)
        (grad,) = torch.autograd.grad(loss, embeds)
    b = tb.batch
    at = grad[b.soft_rows, b.soft_cols]  # row-major: row r's slots are consecutive
    return at.view(tb.rows, tb.n_trigger, -1).sum(dim=0)
