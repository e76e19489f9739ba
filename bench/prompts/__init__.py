"""Prompt templates: the template language, tokenizer-aware rendering, verbalizers, configs.

``templates_for(cfg, relation=None, family=None)`` resolves a ``conf/template/*.yaml`` mapping:

- ``kind: prompt_set``: per-relation prompts from ``data/lama/prompts/<prompt_set>.jsonl`` (rows
  ``{relation, template, rank, source}``); ``rank`` picks one (0 = the set's first or best),
  a list picks several, null keeps all in rank order.
- ``kind: fixed``: ``text`` (one template), ``texts`` (a list, or a mapping pattern id -> text;
  ``rank`` picks) or ``by_family`` (one per family). ``verbalizer`` maps labels to words;
  ``verbalizers`` overrides it per pattern id (PET); ``parts`` (optional) gives PET's parts per pattern id,
  which ``task.tokenization: pet_slow`` encodes one by one on byte-level BPE tokenizers (RoBERTa).
- ``kind: ptuning``: P-Tuning's continuous template, ``shape`` per family (pseudo tokens before
  [X], between [X] and [Y], after [Y]); ``keep_manual`` keeps the relation's manual prompt text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from bench.errors import ConfigError, DataError
from bench.io_utils import read_jsonl
from bench.paths import data_dir
from bench.prompts.render import FAMILIES, RenderedPrompt, render
from bench.prompts.template import Template, parse_template, with_parts
from bench.prompts.verbalizer import Verbalizer, single_token_id, target_token_ids

__all__ = ["FAMILIES", "RenderedPrompt", "Template", "Verbalizer", "parse_template", "prompt_set_path", "ptuning_text",
           "render", "single_token_id", "target_token_ids", "templates_for", "verbalizer_for"]

KINDS = ("prompt_set", "fixed", "ptuning")
PREP_FIX = "run `make data` (python -m data_prep lama) to write data/lama/prompts/"
SEARCH_FIX = "run the search that writes it: python -m bench.search autoprompt model=... variant=... (docs/autoprompt.md)"


def prompt_set_path(name: str, root: Path | None = None) -> Path:
    return (root or data_dir()) / "lama" / "prompts" / f"{name}.jsonl"


@lru_cache(maxsize=16)
def _prompt_rows(path: Path, mtime: float) -> dict[str, list[tuple[int, str]]]:
    rows: dict[str, list[tuple[int, str]]] = {}
    for row in read_jsonl(path, required=("relation", "template", "rank"), fix=PREP_FIX):
        rows.setdefault(str(row["relation"]), []).append((int(row["rank"]), str(row["template"])))
    return {rel: sorted(items) for rel, items in rows.items()}


def _prompt_set(name: str, relation: str | None, ranks: object, cfg_name: str) -> list[Template]:
    if relation is None:
        raise ConfigError(f"template config {cfg_name!r} is a per-relation prompt set: pass a relation")
    path = prompt_set_path(name)
    if not path.is_file():
        raise DataError(f"prompt set {name!r} is not prepared", file=path,
                        fix=SEARCH_FIX if name.startswith("autoprompt_search") else PREP_FIX)
    items = _prompt_rows(path, path.stat().st_mtime).get(relation, [])
    if ranks is not None:
        wanted = [ranks] if isinstance(ranks, int) else list(ranks)
        by_rank = dict(items)
        items = [(r, by_rank[r]) for r in wanted if r in by_rank]
    return [parse_template(text, name=f"{cfg_name}:{relation}:r{rank}") for rank, text in items]


def ptuning_text(shape: Sequence[int], manual: str | None = None, order: str = "paper", mlm: bool = True) -> str:
    """P-Tuning's LAMA template text for ``shape`` = pseudo tokens (before [X], after [X], after [Y]).

    ``paper``: ``[P:a] [X] [P:b] [Y] [P:c]``. ``code``: THUDM/P-tuning's code for masked LMs puts
    the mask first, ``[P:a] [Y] [P:b] [X] [P:c]``, with " ." in place of an empty last block.
    ``manual``: keep the manual prompt, pseudo tokens before it, right after [X] and at its end.
    """
    if len(shape) != 3 or any(not isinstance(n, int) or n < 0 for n in shape):
        raise ConfigError(f"P-Tuning shape must be three counts >= 0, got {list(shape)}")
    a, b, c = (f"[P:{n}]" if n else "" for n in shape)
    if manual is not None:
        body = manual.strip().replace("[X]", f"[X] {b}".rstrip(), 1)
        parts = [a, body, c]
    elif order == "code" and mlm:
        parts = [a, "[Y]", b, "[X]", c or "."]
    elif order in ("paper", "code"):
        parts = [a, "[X]", b, "[Y]", c]
    else:
        raise ConfigError(f"P-Tuning order must be 'paper' or 'code', got {order!r}")
    return " ".join(p for p in parts if p)


def _family_value(value: object, family: str | None, key: str, cfg_name: str) -> object:
    if not isinstance(value, Mapping):
        return value
    fam = family or "mlm"
    if fam not in value:
        raise ConfigError(f"template config {cfg_name!r}: {key} has no entry for family {fam!r} ({sorted(value)})")
    return value[fam]


def templates_for(cfg: Mapping, relation: str | None = None, family: str | None = None) -> list[Template]:
    """The templates a config selects (for ``relation`` when it is per-relation), in rank order."""
    name = str(cfg.get("name", "?"))
    kind = cfg.get("kind")
    if kind == "prompt_set":
        return _prompt_set(str(cfg["prompt_set"]), relation, cfg.get("rank"), name)
    if kind == "fixed":
        texts = cfg.get("texts") or ([cfg["text"]] if cfg.get("text") else None)
        if texts is None and cfg.get("by_family"):
            texts = [_family_value(cfg["by_family"], family, "by_family", name)]
        if not texts:
            raise ConfigError(f"template config {name!r} (kind fixed) needs text, texts or by_family")
        by_id = {int(k): v for k, v in texts.items()} if isinstance(texts, Mapping) else dict(enumerate(texts))
        ranks = cfg.get("rank")
        wanted = sorted(by_id) if ranks is None else [ranks] if isinstance(ranks, int) else list(ranks)
        bad = [r for r in wanted if r not in by_id]
        if bad:
            raise ConfigError(f"template config {name!r}: rank {bad[0]} out of range ({sorted(by_id)})")
        parts = {int(k): v for k, v in (cfg.get("parts") or {}).items()}  # PET's parts per pattern id (optional)
        out = [parse_template(str(by_id[r]), name=f"{name}:r{r}") for r in wanted]
        # an overridden text (template.texts=...) leaves its stale parts off: only pet_slow on BPE needs them
        return [with_parts(t, parts[r], f"template config {name!r} parts[{r}]", strict=False) if r in parts else t
                for t, r in zip(out, wanted, strict=True)]
    if kind == "ptuning":
        shape = list(_family_value(cfg.get("shape", [3, 3, 3]), family, "shape", name))
        manual = None
        if cfg.get("keep_manual"):
            found = _prompt_set(str(cfg.get("manual_set", "lama")), relation, 0, name)
            if not found:
                return []
            manual = found[0].text
        text = ptuning_text(shape, manual, str(cfg.get("order", "paper")), mlm=(family or "mlm") != "clm")
        return [parse_template(text, name=f"{name}:{relation}" if relation else name)]
    raise ConfigError(f"template config {name!r}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def verbalizer_for(cfg: Mapping, rank: int | None = None) -> Verbalizer | None:
    """The config's ``verbalizer`` (label -> word or words), or its ``verbalizers[rank]`` override
    (PET's pattern-specific verbalizers); ``rank`` defaults to the config's ``rank``."""
    rank = cfg.get("rank") if rank is None else rank
    overrides = cfg.get("verbalizers") or {}
    mapping = next((v for k, v in overrides.items() if int(k) == rank), None) if isinstance(rank, int) else None
    mapping = cfg.get("verbalizer") if mapping is None else mapping
    return None if mapping is None else Verbalizer.from_config(mapping)
