"""Prompt search run here, not read from a file: AutoPrompt's trigger search and label-token search.

- ``hotflip``: the token filter and the HotFlip candidate list (gradient . embedding matrix);
- ``triggers``: facts rendered with trigger slots, the loss gradient at the triggers, and every
  candidate of one position scored in one batched forward pass;
- ``autoprompt``: the per-relation search loop with its resumable state;
- ``prompt_set``: the found triggers written as a LAMA prompt set with provenance;
- ``label_search``: AutoPrompt's label-token search for classification;
- ``table``: the found prompts as a table (relation -> trigger tokens);
- ``speed``: one iteration, ours against the reference's loop (``make bench-autoprompt``);
- ``__main__``: ``python -m bench.search autoprompt model=... relations=...`` (docs/autoprompt.md).
"""
