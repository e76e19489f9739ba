"""Found triggers -> a LAMA prompt set in the suite's format (``data/lama/prompts/<name>.jsonl``),
read by ``template=...`` configs exactly like the published AutoPrompt sets, plus its provenance
(``<name>.provenance.json``: model, seed, iterations, settings, dev scores per relation)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.errors import ConfigError
from bench.io_utils import atomic_write_json, atomic_write_jsonl
from bench.prompts import prompt_set_path
from bench.prompts.template import Field, Target, Text, parse_template

_SOFT = re.compile(r"\[P(?::(\d+))?\]")


def trigger_text(tokenizer, ids: Sequence[int]) -> str:
    """The trigger tokens as running text (word pieces joined), as AutoPrompt prints its LAMA prompts."""
    return tokenizer.decode(list(ids), clean_up_tokenization_spaces=False).strip()


def template_with_triggers(search_template: str, tokenizer, trigger: Sequence[int]) -> str:
    """The search template with each pseudo-token block replaced by its trigger tokens' text."""
    blocks = parse_template(search_template).soft_blocks
    if sum(blocks) != len(trigger):
        raise ConfigError(f"template {search_template!r} has {sum(blocks)} trigger slots, the trigger {len(trigger)}")
    start, texts = 0, []
    for count in blocks:
        texts.append(trigger_text(tokenizer, trigger[start : start + count]))
        start += count
    pieces = iter(texts)
    text = _SOFT.sub(lambda _m: next(pieces), search_template)
    parsed = parse_template(text)
    extra = [s for s in parsed.segments if not isinstance(s, Text | Target) and s != Field("x")]
    if extra or not parsed.has_target:
        raise ConfigError(f"the found prompt {text!r} does not parse back to a LAMA template ({extra})")
    return text


def write_prompt_set(name: str, rows: Sequence[Mapping], provenance: Mapping, root: Path | None = None) -> Path:
    """Write the set (one row per relation, rank 0) and its provenance beside it; returns the set's path."""
    path = prompt_set_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(path, rows)
    atomic_write_json(provenance_path(name, root), provenance)
    return path


def provenance_path(name: str, root: Path | None = None) -> Path:
    return prompt_set_path(name, root).with_suffix(".provenance.json")
