"""The template language: literal text plus slots, parsed into an immutable :class:`Template`.

Slots (anything else is literal text; a ``[`` or ``{`` that does not open a slot is literal too):

- ``[X]`` the subject, an alias of the field ``{x}``; ``{name}`` any field of the example.
  ``{name:trunc}`` may be shortened to fit ``max_length`` (PET's "shortenable"); ``lcfirst``
  lower-cases the first character and ``drop_last`` removes the last character (LM-BFF's
  ``*+sentl_1*`` and ``*sent-_0*``); modifiers combine with commas: ``{premise:trunc,drop_last}``.
- ``[Y]`` or ``[MASK]``: the target slot (at most one).
- ``[P]`` / ``[P:n]``: ``n`` continuous pseudo tokens (P-Tuning); ``[P:3] [X] [P:3] [Y] [P:3]``.
- ``[A:text]``: anchor tokens, real words kept inside a continuous template (P-Tuning's ``[A:?]``).
- ``[SEP]``: the boundary of a text pair (PET's ``parts_a`` / ``parts_b``): the tokenizer's pair
  separator (``[SEP]``, ``</s></s>``); the second text gets token type 1 where the model uses them.
  ``render(sep="text")`` (``task.sep``) makes it the literal text "[SEP]" inside one sequence (PT-Fewshot).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from bench.errors import ConfigError

FIELD_MODIFIERS = ("trunc", "lcfirst", "drop_last")
_SLOT = re.compile(r"\[([A-Za-z][A-Za-z0-9_]*)(?::([^\[\]]*))?\]")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}")
_UNCLOSED = re.compile(r"\[(?:X|Y|MASK|P|SEP)(?::[^\]]*)?(?=$|\s)|\[A:[^\]]*$")
SLOT_HELP = "known slots: [X] [Y] [MASK] [P] [P:n] [A:text] [SEP] {field} {field:trunc}"


@dataclass(frozen=True)
class Text:
    """Literal text, tokenised as running text."""

    text: str


@dataclass(frozen=True)
class Field:
    """An input field of the example; ``trunc`` fields may be shortened to fit ``max_length``."""

    name: str
    trunc: bool = False
    lcfirst: bool = False
    drop_last: bool = False

    def value(self, example: Mapping[str, object]) -> str:
        if self.name not in example:
            raise ConfigError(f"template field {{{self.name}}} is not in the example (keys: {sorted(example)})")
        text = str(example[self.name])
        if self.drop_last:
            text = text[:-1]
        if self.lcfirst and text:
            text = text[0].lower() + text[1:]
        return text


@dataclass(frozen=True)
class Target:
    """The slot the model predicts: mask token(s), next-token position or T5 sentinel."""


@dataclass(frozen=True)
class Soft:
    """``count`` continuous pseudo tokens."""

    count: int


@dataclass(frozen=True)
class Anchor:
    """Real-word tokens inside a continuous template; rendered like text, positions reported."""

    text: str


@dataclass(frozen=True)
class Sep:
    """The boundary between the two texts of a pair."""


Segment = Text | Field | Target | Soft | Anchor | Sep


@dataclass(frozen=True)
class Template:
    """A parsed template: the source text, its segments and an optional name (for messages)."""

    text: str
    segments: tuple[Segment, ...]
    name: str | None = None
    parts: tuple[Template, ...] | None = None  # PET's parts of this pattern (``with_parts``), each encoded on its own

    def __str__(self) -> str:
        return self.text

    @property
    def fields(self) -> tuple[str, ...]:
        """Distinct field names, in order of first use."""
        return tuple(dict.fromkeys(s.name for s in self.segments if isinstance(s, Field)))

    @property
    def num_soft(self) -> int:
        return sum(s.count for s in self.segments if isinstance(s, Soft))

    @property
    def soft_blocks(self) -> tuple[int, ...]:
        """Pseudo-token counts per ``[P:n]`` slot, in order (P-Tuning's template shape)."""
        return tuple(s.count for s in self.segments if isinstance(s, Soft))

    @property
    def has_target(self) -> bool:
        return any(isinstance(s, Target) for s in self.segments)

    @property
    def is_pair(self) -> bool:
        return any(isinstance(s, Sep) for s in self.segments)

    def fill(self, example: Mapping[str, object], target: str = "[MASK]", soft: str = "", sep: str = " ") -> str:
        """The plain string: fields filled, ``target`` for the target slot, ``soft`` per pseudo token."""
        parts = []
        for seg in self.segments:
            if isinstance(seg, Text | Anchor):
                parts.append(seg.text)
            elif isinstance(seg, Field):
                parts.append(seg.value(example))
            elif isinstance(seg, Target):
                parts.append(target)
            elif isinstance(seg, Sep):
                parts.append(sep)
            else:
                parts.append(soft * seg.count)
        return "".join(parts)


def _error(text: str, name: str | None, column: int, message: str) -> ConfigError:
    label = f"{name!r} " if name else ""
    return ConfigError(f"template {label}{text!r}, column {column + 1}: {message}")


def _slot(match: re.Match[str], text: str, name: str | None) -> Segment:
    slot, arg = match.group(1), match.group(2)
    col = match.start()
    if slot in ("Y", "MASK") and arg is None:
        return Target()
    if slot == "X" and arg is None:
        return Field("x")
    if slot == "SEP" and arg is None:
        return Sep()
    if slot == "P":
        if arg is None:
            return Soft(1)
        if not re.fullmatch(r"\s*[0-9]+\s*", arg) or int(arg) < 1:
            raise _error(text, name, col, f"{match.group(0)}: the pseudo-token count must be a whole number >= 1")
        return Soft(int(arg))
    if slot == "A":
        if not arg or not arg.strip():
            raise _error(text, name, col, f"{match.group(0)}: an anchor needs text, e.g. [A:?]")
        return Anchor(arg)
    raise _error(text, name, col, f"unknown slot {match.group(0)}; {SLOT_HELP}")


def _field(match: re.Match[str], text: str, name: str | None) -> Field:
    mods = [m.strip() for m in (match.group(2) or "").split(",") if m.strip()] if match.group(2) is not None else []
    if match.group(2) is not None and not mods:
        raise _error(text, name, match.start(), f"{match.group(0)}: empty modifier list")
    bad = [m for m in mods if m not in FIELD_MODIFIERS]
    if bad:
        raise _error(text, name, match.start(),
                     f"{match.group(0)}: unknown field modifier {bad[0]!r}; known: {', '.join(FIELD_MODIFIERS)}")
    return Field(match.group(1), trunc="trunc" in mods, lcfirst="lcfirst" in mods, drop_last="drop_last" in mods)


def parse_template(text: str, *, name: str | None = None) -> Template:
    """Parse ``text`` into a :class:`Template`; :class:`ConfigError` names the template and column."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"template {name or ''!r}: empty template text {text!r}")
    segments: list[Segment] = []
    literal: list[str] = []
    target_col: int | None = None
    sep_col: int | None = None
    i = 0
    while i < len(text):
        char = text[i]
        match = _SLOT.match(text, i) if char == "[" else _FIELD.match(text, i) if char == "{" else None
        if match is None:
            if char == "[" and _UNCLOSED.match(text, i):
                raise _error(text, name, i, f"unclosed slot starting {text[i:i + 8]!r}; {SLOT_HELP}")
            literal.append(char)
            i += 1
            continue
        segment = _slot(match, text, name) if char == "[" else _field(match, text, name)
        if isinstance(segment, Target):
            if target_col is not None:
                raise _error(text, name, i, f"second target slot {match.group(0)} "
                             f"(the first is at column {target_col + 1}); a template has one [Y]/[MASK]")
            target_col = i
        if isinstance(segment, Sep):
            if sep_col is not None:
                raise _error(text, name, i, f"second [SEP] (the first is at column {sep_col + 1}); a pair has two texts")
            sep_col = i
        if literal:
            segments.append(Text("".join(literal)))
            literal = []
        segments.append(segment)
        i = match.end()
    if literal:
        segments.append(Text("".join(literal)))
    return Template(text=text, segments=tuple(segments), name=name)


def with_parts(template: Template, parts: Iterable[str], where: str, strict: bool = True) -> Template:
    """``template`` with PET's parts (``pvp.py`` ``get_parts``: a list of texts, ``[SEP]`` between ``parts_a`` and
    ``parts_b``), which byte-level BPE tokenizers encode part by part (``tokenization: pet_slow``). Edge spaces
    of a part count; the parts must spell the template up to whitespace. ``strict=False``: parts that do not
    spell it (the text was overridden) are left off, and only a tokenizer that needs them refuses (render)."""
    if isinstance(parts, str) or not hasattr(parts, "__iter__") or not parts:
        raise ConfigError(f"{where}: parts must be a list of part texts, got {parts!r}")
    parts = [str(p) for p in parts]  # a YAML list (OmegaConf ListConfig) or a plain one
    parsed = tuple(parse_template(p, name=f"{template.name}:part{i}") for i, p in enumerate(parts))
    spelled, expected = re.sub(r"\s", "", "".join(parts)), re.sub(r"\s", "", template.text)
    if spelled != expected:
        if not strict:
            return template
        raise ConfigError(f"{where}: parts {parts!r} spell {spelled!r}, the template {expected!r} (whitespace "
                          "aside).\n  fix: split the template's own text into PET's parts")
    return replace(template, parts=parsed)


def check_template(template: Template, where: str, fields: Collection[str] | None = None) -> None:
    """Before any model: exactly one target slot, and every ``{field}`` among the example's ``fields``.

    ``where`` names the template's config (e.g. ``conf/template/pet_rte.yaml (rank 0)``)."""
    targets = sum(isinstance(seg, Target) for seg in template.segments)
    if targets != 1:
        raise ConfigError(f"{where}: template {template.text!r} has {targets} target slots; it needs exactly one "
                          "[MASK] / [Y].\n  fix: put one [MASK] (or [Y]) where the answer goes")
    if fields is not None:
        missing = sorted(set(template.fields) - set(fields))
        if missing:
            raise ConfigError(f"{where}: template {template.text!r} uses field(s) {missing} that the data does not "
                              f"have; available fields: {', '.join(sorted(fields))}.\n"
                              "  fix: use one of the available fields (listed per task in bench/superglue/data.py) "
                              "or another template")
