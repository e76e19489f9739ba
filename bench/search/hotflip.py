"""HotFlip candidates for one trigger position, and the tokens a search may never propose.

AutoPrompt (ucinlp/autoprompt ``create_trigger.py``, ``hotflip_attack``): the candidates of a
position are the ``num_cand`` tokens ``w`` with the largest ``-e_w . g``, where ``g`` is the
gradient of the loss with respect to that position's input embedding (a first-order estimate of
the loss change when the token becomes ``w``), and ``e_w`` the row of the input embedding matrix.
"""

from __future__ import annotations

from collections.abc import Collection

import torch

from bench.prompts.pieces import BYTE_BPE, tokenizer_info

TEMPLATE_CHARS = "[]{}"  # characters that could open a slot of the template language (bench.prompts.template)


def hotflip_candidates(grad: torch.Tensor, embedding_matrix: torch.Tensor, num_cand: int,
                       blocked: torch.Tensor | None = None, increase_loss: bool = False) -> torch.Tensor:
    """Ids of the ``num_cand`` best replacements for one position, best first.

    ``grad``: (dim,) loss gradient at the position; ``embedding_matrix``: (vocab, dim);
    ``blocked``: (vocab,) bool, tokens never proposed (AutoPrompt subtracts 1e32 from their score)."""
    with torch.no_grad():
        scores = embedding_matrix.float() @ grad.float()
        if not increase_loss:
            scores = -scores
        if blocked is not None:
            scores = scores.masked_fill(blocked.to(scores.device), float("-inf"))
        return scores.topk(num_cand).indices


def starts_upper(tokenizer, token_id: int, byte_level: bool) -> bool:
    """AutoPrompt's ``isupper``: the decoded token starts a capitalised word (a lazy proper-noun test).

    Byte-level BPE (its ``GPT2Tokenizer`` branch, which RoBERTa's slow tokenizer took): the decoded
    token must start with a space followed by a capital; any other tokenizer: its first character."""
    decoded = tokenizer.decode([token_id])
    if byte_level:
        return len(decoded) > 1 and decoded[0] == " " and decoded[1].isupper()
    return bool(decoded) and decoded[0].isupper()


def blocked_tokens(tokenizer, n_rows: int, label_ids: Collection[int], filter_words: bool = True,
                   template_chars: bool = True) -> torch.Tensor:
    """(n_rows,) bool mask of the tokens a trigger may not take.

    ``filter_words`` (AutoPrompt's ``--filter``): the gold objects of the training facts, special
    tokens and capitalised tokens, except tokens of one character, which its loop skips.
    Always: rows past the tokenizer's base vocabulary (added or padding rows, never real tokens).
    ``template_chars``: tokens containing ``[ ] { }``, which could open a slot when the found
    prompt is saved as a template (ours: the saved text must parse back to the same template)."""
    size = min(tokenizer.vocab_size, n_rows)  # read once: a property that may rebuild the vocabulary
    blocked = torch.zeros(n_rows, dtype=torch.bool)
    blocked[size:] = True
    if filter_words and label_ids:
        blocked[torch.tensor(sorted(set(label_ids)), dtype=torch.long)] = True
    byte_level = tokenizer_info(tokenizer).kind == BYTE_BPE
    special = set(tokenizer.all_special_ids)
    words = [(word, idx) for word, idx in tokenizer.get_vocab().items() if idx < size]
    hits = [idx for word, idx in words if template_chars and any(ch in word for ch in TEMPLATE_CHARS)]
    if filter_words:
        hits += [idx for word, idx in words
                 if len(word) > 1 and (idx in special or starts_upper(tokenizer, idx, byte_level))]
    blocked[torch.tensor(hits, dtype=torch.long)] = True
    return blocked
