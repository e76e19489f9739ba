"""Render a template for one example into model input ids, per backbone family.

- ``mlm``: the target slot becomes the mask token (``num_target_tokens`` of them); specials as
  the tokenizer adds them ([CLS] .. [SEP], <s> .. </s>).
- ``clm``: everything after the target slot is dropped (LAMA, P-Tuning); the target position is
  the last input token, whose next-token logits score the target. Whitespace before [Y] is not
  rendered: it belongs to the target word (``target_prefix_space``), so GPT-2's "... located in "
  never ends in a stray ``Ġ``. A template that starts with [Y] gets the BOS token as its prefix.
- ``seq2seq``: the target slot becomes ``<extra_id_0>`` (encoder input ends with ``</s>``);
  ``decoder_input_ids = [pad, <extra_id_0>]`` and the target position is 1 in the decoder.
  ``clm`` and ``seq2seq`` ignore ``num_target_tokens``: further target tokens are appended (to the
  input / the decoder) by whoever scores them (``bench.prompts.multitoken``).

Whitespace belongs to the piece that follows it; runs of whitespace between pieces count as one
space and whitespace at the end is dropped, so no piece renders as a whitespace-only token.
Pseudo tokens (``[P:n]``) take no whitespace: the text after them keeps its own leading space.
Exception: a ``drop_last`` field keeps the whitespace its value ends with (LM-BFF encodes ``text[:-1]``
as it is, so tokenised "church ." gives "church" "Ġ" and then the template's "?", not "Ġ?").
``[SEP]`` inserts the tokenizer's pair separator; the text after it starts a new text (as after
the start of the string), and ``token_type_ids`` mark the second text where the model uses them.
``sep="text"`` (PT-Fewshot, which writes "[SEP]" as text inside its one sequence) instead encodes the
literal text "[SEP]" there (BERT/ALBERT: their [SEP] token; RoBERTa: BPE pieces of " [SEP]"): one text,
no type-1 segment, truncated as one text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.errors import ConfigError
from bench.prompts.pieces import BYTE_BPE, encode_piece, encode_raw, tokenizer_info
from bench.prompts.slow_tokenizers import pet_slow_ids
from bench.prompts.template import Anchor, Field, Sep, Soft, Target, Template

FAMILIES = ("mlm", "clm", "seq2seq")
SENTINEL = "<extra_id_0>"


@dataclass(frozen=True)
class RenderedPrompt:
    """Model inputs for one example; positions index ``input_ids`` (``decoder_input_ids`` for T5 targets)."""

    input_ids: list[int]
    target_positions: list[int]
    soft_positions: list[int] = field(default_factory=list)
    anchor_positions: list[int] = field(default_factory=list)
    decoder_input_ids: list[int] | None = None
    target_prefix_space: bool = True  # whether whitespace preceded [Y]: tokenize the target word with it
    token_type_ids: list[int] | None = None  # pair templates ([SEP]) on models with segment embeddings

    def tokens(self, tokenizer) -> list[str]:
        return list(tokenizer.convert_ids_to_tokens(self.input_ids))


@dataclass
class _Piece:
    kind: str  # "text" | "anchor" | "target" | "soft" | "sep" | "sep_text" (``sep="text"``)
    text: str = ""
    space_before: bool = False
    trunc: bool = False
    count: int = 0
    ids: list[int] = field(default_factory=list)
    tail: str = ""  # trailing whitespace kept verbatim (``drop_last`` fields only)
    raw: bool = False  # encode ``text`` exactly as it stands, edge spaces included (PET's parts on byte-level BPE)


def _pieces(template: Template, example: Mapping[str, object], start_space: bool,
            sep: str = "pair") -> tuple[list[_Piece], bool]:
    """Split the filled template into pieces (whitespace moved forward); also the target's prefix space."""
    pieces: list[_Piece] = []
    pending, at_start, target_space = "", True, start_space
    for seg in template.segments:
        if isinstance(seg, Soft):
            pieces.append(_Piece("soft", count=seg.count))
            pending, at_start = "", False
            continue
        if isinstance(seg, Sep) and sep == "text":  # running text goes on after the literal "[SEP]"
            pieces.append(_Piece("sep_text"))
            pending, at_start = "", False
            continue
        if isinstance(seg, Sep):
            pieces.append(_Piece("sep"))
            pending, at_start = "", True
            continue
        if isinstance(seg, Target):
            target_space = bool(pending) or (at_start and start_space)
            pieces.append(_Piece("target"))
            pending, at_start = "", False
            continue
        value = seg.value(example) if isinstance(seg, Field) else seg.text
        text = pending + value
        core = text.strip()
        if not core:
            pending += value
            continue
        space = text[0].isspace() or (at_start and start_space)
        pieces.append(_Piece("anchor" if isinstance(seg, Anchor) else "text", core, space,
                             isinstance(seg, Field) and seg.trunc))
        pending = text[len(text.rstrip()) :]
        if isinstance(seg, Field) and seg.drop_last and pending:  # LM-BFF's *sent-_i*: the space stays here
            pieces[-1].tail, pending = pending, ""
        at_start = False
    return _merge(pieces), target_space


def _pet_parts(template: Template, example: Mapping[str, object]) -> list[_Piece]:
    """PET's parts as its slow RoBERTa tokenizer (transformers 3.0.2, ``add_prefix_space=True``) encodes each on
    its own: a space before a part that does not start with one, the part's own edge spaces kept (a trailing
    space is a token ``Ġ``), text before the mask right-stripped (the mask token's ``lstrip``), text after it
    kept as it is (``<mask>.`` gives ``.``). A part holding a ``:trunc`` field is shortenable as a whole."""
    if template.parts is None:
        raise ConfigError(f"template {template.text!r} has no PET parts: tokenization=pet_slow on a byte-level BPE "
                          "tokenizer encodes PET's parts one by one.\n  fix: give the template config's `parts:` "
                          "for this pattern, or set task.tokenization=fast (running text)")
    pieces: list[_Piece] = []
    for part in template.parts:
        if any(isinstance(s, Sep) for s in part.segments):
            if len(part.segments) != 1:
                raise ConfigError(f"PET part {part.text!r}: [SEP] must be a part of its own")
            pieces.append(_Piece("sep"))
            continue
        if len(part.segments) == 1 and isinstance(part.segments[0], Soft):  # PT-Fewshot: a pseudo-token part
            pieces.append(_Piece("soft", count=part.segments[0].count))
            continue
        if any(isinstance(s, Soft | Anchor) for s in part.segments):
            raise ConfigError(f"PET part {part.text!r}: pseudo tokens must be a part of their own; anchors are "
                              "not PET parts")
        trunc = any(isinstance(s, Field) and s.trunc for s in part.segments)
        chunks: list[str | None] = [""]  # None: the target
        for seg in part.segments:
            if isinstance(seg, Target):
                chunks += [None, ""]
            else:
                chunks[-1] += seg.value(example) if isinstance(seg, Field) else seg.text
        if trunc and None in chunks:
            raise ConfigError(f"PET part {part.text!r}: a shortenable part cannot hold the mask")
        if None not in chunks and not str(chunks[0]).strip():
            continue  # PET drops empty parts; the tokenizer gives nothing for a blank one
        first = chunks[0] if chunks[0] else "<mask>"
        if not first[0].isspace():
            chunks[0] = " " + str(chunks[0])
        for i, chunk in enumerate(chunks):
            if chunk is None:
                pieces.append(_Piece("target"))
                continue
            text = chunk.rstrip() if i + 1 < len(chunks) else chunk  # text before a mask loses its trailing space
            if text:
                pieces.append(_Piece("text", text, trunc=trunc, raw=True))
    return pieces


def _merge(pieces: list[_Piece]) -> list[_Piece]:
    """Join neighbouring text pieces (not ``:trunc`` fields) so they tokenise as one run of text.

    Needed where pieces touch without whitespace: GPT-2 tokenises "Up!," as "Up" "!,", not "!" ",".
    """
    merged: list[_Piece] = []
    for piece in pieces:
        prev = merged[-1] if merged else None
        if prev and piece.kind == prev.kind == "text" and not (piece.trunc or prev.trunc or prev.tail):
            prev.text += (" " if piece.space_before else "") + piece.text
        else:
            merged.append(piece)
    return merged


def _target_ids(tokenizer, family: str, num_target_tokens: int) -> list[int]:
    if family == "mlm":
        if tokenizer.mask_token_id is None:
            raise ConfigError(f"{type(tokenizer).__name__} has no mask token: family 'mlm' needs one")
        return [tokenizer.mask_token_id] * num_target_tokens
    if family == "seq2seq":
        sentinel = tokenizer.convert_tokens_to_ids(SENTINEL)
        if sentinel is None or sentinel == tokenizer.unk_token_id:
            raise ConfigError(f"{type(tokenizer).__name__} has no {SENTINEL} sentinel: family 'seq2seq' needs T5's")
        return [sentinel]
    return []


TRUNCATION = ("longest", "pet")
SEP_MODES = ("pair", "text")  # [SEP]: the pair boundary, or the literal text "[SEP]" in one sequence (PT-Fewshot)
SEP_TEXT = "[SEP]"


def _truncate(pieces: list[_Piece], overflow: int, template: Template, max_length: int,
              rule: str = "longest") -> None:
    """Drop ``overflow`` tokens, one at a time, from the end of a ``:trunc`` field.

    ``longest``: the longest field loses its last token (ties: the later field). ``pet``: PET's
    ``PVP.truncate``: of the two texts of a pair (split at ``[SEP]``), the one with more
    truncatable tokens loses (ties: the second); within it the *last* non-empty ``:trunc`` field.
    """
    if rule not in TRUNCATION:
        raise ConfigError(f"truncation {rule!r}: use one of {', '.join(TRUNCATION)}")
    split = next((i for i, p in enumerate(pieces) if p.kind == "sep"), len(pieces))
    for _ in range(overflow):
        candidates = [p for p in pieces if p.trunc and p.ids]
        if not candidates:
            raise ConfigError(f"template {template.text!r} does not fit max_length={max_length}: "
                              f"{overflow} tokens over and no {{field:trunc}} left to shorten")
        if rule == "pet":
            first = [p for p in pieces[:split] if p.trunc and p.ids]
            second = [p for p in pieces[split:] if p.trunc and p.ids]
            side = first if sum(len(p.ids) for p in first) > sum(len(p.ids) for p in second) else second
            victim = side[-1]
        else:
            longest = max(len(p.ids) for p in candidates)
            victim = [p for p in candidates if len(p.ids) == longest][-1]
        victim.ids.pop()


def render(
    template: Template,
    example: Mapping[str, object],
    tokenizer,
    family: str,
    *,
    max_length: int | None = None,
    num_target_tokens: int = 1,
    soft_token_id: int | None = None,
    truncation: str = "longest",
    tokenization: str = "fast",
    sep: str = "pair",
) -> RenderedPrompt:
    """Tokenise ``template`` filled with ``example`` for ``family`` ("mlm", "clm" or "seq2seq").

    ``tokenization="pet_slow"``: text pieces as PET's slow tokenizers give them: on SentencePiece and WordPiece
    ``bench.prompts.slow_tokenizers``; on byte-level BPE PET's parts (``template.parts``), each with a prefix space.
    ``sep="text"``: ``[SEP]`` is the literal text "[SEP]" inside one sequence (module docstring)."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
    if sep not in SEP_MODES:
        raise ConfigError(f"sep {sep!r}: use one of {', '.join(SEP_MODES)}")
    if not template.has_target:
        raise ConfigError(f"template {template.text!r} has no target slot [Y]/[MASK]")
    if num_target_tokens < 1:
        raise ConfigError(f"num_target_tokens must be >= 1, got {num_target_tokens}")
    info = tokenizer_info(tokenizer)
    if tokenization == "pet_slow" and info.kind == BYTE_BPE:  # PET's parts, each with a prefix space (_pet_parts)
        if family != "mlm":
            raise ConfigError(f"tokenization=pet_slow encodes PET's parts for a masked LM, not family {family!r}")
        pieces, target_space = _pet_parts(template, example), True  # PET encodes every word with a prefix space
    else:
        pieces, target_space = _pieces(template, example, info.start_space, sep)
    if family == "clm":
        pieces = pieces[: next(i for i, p in enumerate(pieces) if p.kind == "target") + 1]
    for piece in pieces:
        if piece.kind == "sep" and sep == "text":  # one sequence: no pair boundary for types or truncation
            piece.kind = "sep_text"
        if piece.kind == "sep_text":  # a special token where the tokenizer has one ([SEP]), else its text pieces
            piece.ids = encode_piece(tokenizer, SEP_TEXT, space_before=True)
        elif piece.raw:
            piece.ids = encode_raw(tokenizer, piece.text)
        elif piece.kind in ("text", "anchor"):
            piece.ids = encode_piece(tokenizer, piece.text, space_before=piece.space_before)
            if tokenization == "pet_slow":
                piece.ids = pet_slow_ids(tokenizer, piece.text, piece.ids)
            if piece.tail and info.kind == BYTE_BPE:  # byte-level BPE encodes trailing whitespace ("Ġ")
                piece.ids += tokenizer.encode(piece.tail, add_special_tokens=False)
        elif piece.kind == "target":
            piece.ids = _target_ids(tokenizer, family, num_target_tokens)
        elif piece.kind == "sep":
            if info.pair_middle is None:
                raise ConfigError(f"cannot tell how {type(tokenizer).__name__} separates a text pair ([SEP])")
            piece.ids = list(info.pair_middle)
    prefix = list(info.prefix_ids)
    suffix = [] if family == "clm" else list(info.suffix_ids)
    if family == "clm" and not prefix and not any(p.ids or p.count for p in pieces if p.kind != "target"):
        if tokenizer.bos_token_id is None:
            raise ConfigError(f"template {template.text!r} starts with [Y]: a left-to-right model needs a prefix")
        prefix = [tokenizer.bos_token_id]
    if max_length is not None:
        total = len(prefix) + len(suffix) + sum(p.count if p.kind == "soft" else len(p.ids) for p in pieces)
        if total > max_length:
            _truncate(pieces, total - max_length, template, max_length, truncation)

    fill = next(c for c in (soft_token_id, tokenizer.unk_token_id, tokenizer.pad_token_id, 0) if c is not None)
    ids, targets, softs, anchors = list(prefix), [], [], []
    second = None  # where the second text of a pair starts
    for piece in pieces:
        if piece.kind == "sep":
            ids.extend(piece.ids)
            second = len(ids)
            continue
        if piece.kind == "soft":
            softs.extend(range(len(ids), len(ids) + piece.count))
            ids.extend([fill] * piece.count)
            continue
        span = list(range(len(ids), len(ids) + len(piece.ids)))
        if piece.kind == "target":
            targets = span
        elif piece.kind == "anchor":
            anchors.extend(span)
        ids.extend(piece.ids)
    ids.extend(suffix)
    decoder = None
    if family == "clm":
        targets = [len(ids) - 1]
    elif family == "seq2seq":
        start = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        decoder, targets = [start, tokenizer.convert_tokens_to_ids(SENTINEL)], [1]
    types = None
    if second is not None and info.pair_types and family == "mlm":
        types = [0] * second + [1] * (len(ids) - second)
    return RenderedPrompt(ids, targets, softs, anchors, decoder, target_space, types)
