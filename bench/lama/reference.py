"""THUDM/P-tuning's LAMA protocol where it departs from the paper (``task.protocol: reference``).

Read in THUDM/P-tuning ``LAMA/`` (docs/lama-protocol.md lists each difference with its line):

- query of a template without pseudo tokens (manual prompts, the FT bare query): the template with
  [X] filled, cut at [Y] for left-to-right models or [Y] -> the mask token for masked LMs, then
  ``tokenizer(' ' + text)['input_ids']`` (p_tuning/modeling.py L76-83): a leading space on the
  first word and, for GPT-2, the whitespace before [Y] kept as a trailing ``Ġ`` token. Templates
  with pseudo tokens render as in the paper protocol (the reference builds the same ids,
  modeling.py L85-103; tests/test_lama_protocol.py checks it).
- training target of a left-to-right model: the reference puts the label at the last query
  position (modeling.py L150-152) and Hugging Face's causal-LM loss shifts labels by one, so the
  logits of the second-to-last position are trained while the last position is evaluated
  (modeling.py L164): ``TRAIN_TARGET_SHIFT``.
- loop (cli.py L105, L183-219): the last partial batch is dropped and dev is scored before each
  epoch, never after the last one (``bench.train.fit`` with ``drop_last`` / ``eval_before_epoch``).
"""

from __future__ import annotations

from collections.abc import Mapping

from bench.errors import ConfigError
from bench.prompts.render import RenderedPrompt, render
from bench.prompts.template import Anchor, Field, Sep, Soft, Target, Template, Text

# loop settings the reference's cli.py uses, applied to the trainer config by the LAMA runner
REFERENCE_LOOP = {"drop_last": True, "eval_before_epoch": True, "prefer_later_on_tie": True}
# where a left-to-right model's training logits sit relative to the evaluated (last) position
TRAIN_TARGET_SHIFT = {"clm": -1, "mlm": 0}


def reference_query_text(template: Template, example: Mapping[str, object], family: str, mask_token: str | None) -> str:
    """The string the reference tokenises: ``' '`` + the filled template, cut at [Y] (clm) or with the mask (mlm)."""
    parts = []
    for seg in template.segments:
        if isinstance(seg, Target):
            if family == "clm":
                break
            if mask_token is None:
                raise ConfigError("the reference's masked-LM query needs a tokenizer with a mask token")
            parts.append(mask_token)
        elif isinstance(seg, Field):
            parts.append(seg.value(example))
        elif isinstance(seg, Text | Anchor):
            parts.append(seg.text)
        else:
            kind = "[SEP]" if isinstance(seg, Sep) else "[P]"
            raise ConfigError(f"template {template.text!r}: the reference's text query has no {kind} slot")
    return " " + "".join(parts)


def reference_render(template: Template, example: Mapping[str, object], tokenizer, family: str,
                     max_length: int | None = None) -> RenderedPrompt:
    """Model inputs as THUDM/P-tuning builds them (module docstring); pseudo-token templates as ``render``."""
    if family not in TRAIN_TARGET_SHIFT:
        raise ConfigError(f"task.protocol=reference: THUDM/P-tuning has no LAMA query for family {family!r} "
                          "(it runs BERT, RoBERTa, GPT-2 and Megatron); use task.protocol=paper")
    if any(isinstance(seg, Soft) for seg in template.segments):
        return render(template, example, tokenizer, family, max_length=max_length)
    ids = list(tokenizer(reference_query_text(template, example, family, tokenizer.mask_token))["input_ids"])
    if max_length is not None and len(ids) > max_length:
        raise ConfigError(f"template {template.text!r}: the reference query has {len(ids)} tokens, over "
                          f"task.max_length={max_length} (the reference never truncates)")
    if family == "clm":
        target = len(ids) - 1
    else:
        found = [i for i, tok in enumerate(ids) if tok == tokenizer.mask_token_id]
        if len(found) != 1:
            raise ConfigError(f"template {template.text!r}: the reference query has {len(found)} mask tokens, not 1")
        target = found[0]
    return RenderedPrompt(ids, [target])


def render_query(template: Template, example: Mapping[str, object], tokenizer, family: str, protocol: str = "paper",
                 max_length: int | None = None) -> RenderedPrompt:
    """Render one LAMA query under ``protocol`` (``paper``: ``bench.prompts.render``; ``reference``: above)."""
    if protocol == "reference":
        return reference_render(template, example, tokenizer, family, max_length=max_length)
    return render(template, example, tokenizer, family, max_length=max_length)
