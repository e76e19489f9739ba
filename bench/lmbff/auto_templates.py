"""LM-BFF's automatic template search (princeton-nlp/LM-BFF ``tools/generate_template.py``; paper section 5.2):
T5 fills the spans around the label word, over all training examples at once, by beam search.

- Inputs (``get_text``): each training example through a T5 input format in LM-BFF's notation, the
  example's own label word in place, ``<extra_id_0>`` / ``<extra_id_1>`` where T5 writes the template
  (:data:`FORMATS`: single sentences get two formats, the mask after or before the sentence; pairs one);
  single-sentence inputs are cut to 256 tokens (head of the first format, tail of the second).
- Decoding (``generate``): one beam over the *mean* of T5's logits over every example; 18 steps; per
  beam item the ``beam + 3`` best next tokens by that mean logit; a part ends at the next sentinel
  (``<extra_id_1>``, ``<extra_id_2>``) or ``</s>``; an item with both parts is kept as is; the tokens
  LM-BFF forbids (ids 3, 19794, 22354 and two ids 5 in a row: "▁", "....", "..........", ".." in T5's
  vocabulary) are dropped; the ``beam`` items with the highest summed log-probability survive.
- Output: the pieces joined and mapped back to LM-BFF's template notation, then to the suite's
  template language (:func:`suite_text`); a single-sentence format keeps its first ``beam // 2``.

The search is exact to the reference's loop (one forward per beam item, batches of 32, decoder inputs of
20 positions, float32 sums), checked against LM-BFF's own code on the tiny T5
(``python -m bench.parity lmbff_auto``, ``tests/golden/parity/lmbff_auto/``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bench.errors import ConfigError
from bench.progress import eval_progress

MAX_LENGTH = 20  # decoder positions (the reference's max_length); 18 decoding steps
FORWARD_BATCH = 32  # examples per T5 forward pass (the reference's batch_size)
FORBIDDEN_IDS = (3, 19794, 22354)  # the reference's literal ids: "▁", "....", ".........." in T5's vocabulary
PERIOD_ID = 5  # "." in T5's vocabulary: two in a row are forbidden
TRUNCATE = 256  # tokens kept of a single-sentence input (head or tail)


@dataclass(frozen=True)
class Format:
    """One T5 input format and how its output maps back to LM-BFF's notation."""

    source: str  # LM-BFF notation with <extra_id_k> where T5 writes
    back: tuple[tuple[str, str], ...]  # replacements applied to T5's output text, in order
    truncate: str | None  # head | tail | None
    keep_half: bool  # single-sentence formats keep the first beam // 2 results


_SINGLE_BACK = (("<extra_id_0>", "*cls**sent_0*"), ("<extra_id_1>", "*mask*"), ("<extra_id_2>", "*sep+*"),
                ("</s>", "*sep+*"), ("▁", "_"))
_SINGLE_BEFORE_BACK = (("<extra_id_0>", "*cls*"), ("<extra_id_1>", "*mask*"), ("<extra_id_2>", "*+sent_0**sep+*"),
                       ("</s>", "*+sent_0**sep+*"), ("▁", "_"))
_PAIR_BACK = (("<extra_id_0>", "*cls**sent-_0*"), ("<extra_id_1>", "*mask*"), ("<extra_id_2>", "*+sentl_1**sep+*"),
              ("</s>", "*+sentl_1**sep+*"), ("▁", "_"))
FORMATS: dict[str, tuple[Format, ...]] = {  # generate_template.py search_template, per task
    "SST-2": (Format("*cls**sentu_0**<extra_id_0>**label**<extra_id_1>**sep+*", _SINGLE_BACK, "head", True),
              Format("*cls*.*<extra_id_0>**label**<extra_id_1>**+sentu_0**sep+*", _SINGLE_BEFORE_BACK, "tail", True)),
    "SNLI": (Format("*cls**sent-_0**<extra_id_0>**label**<extra_id_1>**+sentl_1**sep+*", _PAIR_BACK, None, False),),
}
MAPPINGS: dict[str, dict[str, str]] = {  # generate_template.py map_of_mapping (the manual label words)
    "SST-2": {"0": "terrible", "1": "great"},
    "SNLI": {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"},
}


def _sentence(part: str, texts: Sequence[str]) -> str | None:
    """The text a sentence part of LM-BFF's notation stands for (``sent_0``, ``+sentl_1``, ...), or None."""
    match = re.fullmatch(r"(\+?)sent(u|l|-|l-)?_(\d+)", part)
    if not match:
        return None
    space, how, index = match.group(1), match.group(2) or "", int(match.group(3))
    text = texts[index]
    if how.startswith("l"):
        text = text[:1].lower() + text[1:]
    elif how == "u":
        text = text[:1].upper() + text[1:]
    if how.endswith("-"):
        text = text[:-1]
    return (" " if space else "") + text


def t5_input(source: str, texts: Sequence[str], label_word: str, tokenizer) -> list[int]:
    """One example's T5 input ids (``get_text``: parts encoded one by one; ``cls`` has no T5 token)."""
    def enc(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    ids: list[int] = []
    for part in source.split("*"):
        if part == "cls" or part == "":
            continue
        if part in ("sep", "sep+"):
            ids.append(tokenizer.eos_token_id)  # generate_template.py sets the separator to </s>
        elif re.fullmatch(r"<extra_id_\d+>", part):
            ids.append(tokenizer.convert_tokens_to_ids(part))
        elif part.startswith("label"):
            ids += enc(" " + label_word)
        elif (text := _sentence(part, texts)) is not None:
            ids += enc(text)
        else:
            text = part.replace("_", " ")
            ids += [tokenizer.convert_tokens_to_ids(text)] if len(text) == 1 else enc(text)
    return ids


def batch_inputs(examples: Sequence[tuple[Sequence[str], str]], fmt: Format, tokenizer) -> list[list[int]]:
    """(texts, label word) per training example -> T5 inputs of one format, cut as the format says."""
    out = []
    for texts, word in examples:
        ids = t5_input(fmt.source, texts, word, tokenizer)
        out.append(ids[-TRUNCATE:] if fmt.truncate == "head" else ids[:TRUNCATE] if fmt.truncate == "tail" else ids)
    return out


@dataclass
class _Beam:
    decoder: torch.Tensor  # (n_examples, MAX_LENGTH)
    ll: torch.Tensor | float
    part: int  # which part is being written (1, 2; > target: done)
    output: list[int]


def beam_search(model, inputs: Sequence[Sequence[int]], sentinel0: int, eos: int, beam: int, target_parts: int = 2,
                progress: Callable = eval_progress) -> list[tuple[list[int], float]]:
    """LM-BFF's ``generate`` loop: (generated ids, summed log-probability) of the final beam, best first."""
    if not inputs:
        raise ConfigError("the template search needs training examples")
    device = next(model.parameters()).device
    width = max(len(x) for x in inputs)
    input_ids = torch.zeros((len(inputs), width), dtype=torch.long)
    attention = torch.zeros((len(inputs), width), dtype=torch.long)
    for row, ids in enumerate(inputs):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[row, : len(ids)] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    start = torch.zeros((len(inputs), MAX_LENGTH), dtype=torch.long)
    start[:, 0] = model.config.decoder_start_token_id
    current = [_Beam(start, 0, 1, [])]
    for i in progress(range(MAX_LENGTH - 2), "T5 template search (decoding steps)"):
        grown: list[_Beam] = []
        for item in current:
            if item.part > target_parts:
                grown.append(item)
                continue
            chunks = []
            with torch.no_grad():
                for s in range(0, len(inputs), FORWARD_BATCH):
                    chunks.append(model(input_ids=input_ids[s : s + FORWARD_BATCH],
                                        attention_mask=attention[s : s + FORWARD_BATCH],
                                        decoder_input_ids=item.decoder.to(device)[s : s + FORWARD_BATCH])[0])
            mean = torch.cat(chunks, 0).mean(0)[i]
            log_denominator = torch.logsumexp(mean, -1).item()
            # the reference sorts every id by its mean logit (Python's stable sort, reverse=True keeps equal
            # values in id order): a stable descending sort gives the same order
            ids = torch.sort(mean[: model.config.vocab_size], descending=True, stable=True).indices[: beam + 3].tolist()
            for word in ids:
                part, ok = item.part, True
                if word == sentinel0 - part or word == eos:
                    part += 1
                output = [*item.output, word]
                ll = item.ll + mean[word] - log_denominator
                decoder = item.decoder.clone()
                decoder[:, i + 1] = word
                if word in FORBIDDEN_IDS or (len(output) > 1 and output[-2] == PERIOD_ID and output[-1] == PERIOD_ID):
                    ok = False
                if ok:
                    grown.append(_Beam(decoder, ll, part, output))
        if not grown:
            break
        grown.sort(key=lambda b: float(b.ll), reverse=True)
        current = grown[:beam]
    return [(b.output, float(b.ll)) for b in current]


def lmbff_template(ids: Sequence[int], fmt: Format, tokenizer) -> str:
    """T5's output tokens joined (``_convert_id_to_token``) and mapped to LM-BFF's template notation."""
    text = "".join(tokenizer.convert_ids_to_tokens(list(ids)))
    for old, new in fmt.back:
        text = text.replace(old, new)
    return text


def suite_text(template: str, fields: Sequence[str]) -> str:
    """LM-BFF's notation -> the suite's template language (``{field:trunc}``, ``[MASK]``; see
    ``bench.prompts.template``): ``_`` is a space, ``cls`` / ``sep+`` are the tokenizer's own specials.

    Refuses what the suite cannot render token for token: whitespace-only text pieces (a ``_`` at the end
    of a text part or two in a row), a second mask, or a missing one."""
    out, masks = [], 0
    for part in template.split("*"):
        if part in ("", "cls", "sep+", "sep"):
            continue
        if part == "mask":
            masks += 1
            out.append(" [MASK]")  # LM-BFF encodes every label word as " " + word
            continue
        match = re.fullmatch(r"(\+?)sent(u|l|-|l-)?_(\d+)", part)
        if match:
            mods = ["trunc", *(["lcfirst"] if (match.group(2) or "").startswith("l") else []),
                    *(["drop_last"] if (match.group(2) or "").endswith("-") else [])]
            if match.group(2) == "u":
                raise ConfigError(f"{template!r}: 'sentu' (upper-case first letter) has no suite field modifier")
            out.append((" " if match.group(1) else "") + "{" + f"{fields[int(match.group(3))]}:{','.join(mods)}" + "}")
            continue
        text = part.replace("_", " ")
        if not text.strip() or text.endswith(" ") or "  " in text or any(c in text for c in "[]{}"):
            raise ConfigError(f"{template!r}: the text part {part!r} has a space the suite's renderer would merge "
                              "or drop (or a bracket it would read as a slot)")
        out.append(text)
    if masks != 1 or not any(p.startswith("{") or p.startswith(" {") for p in out):
        raise ConfigError(f"{template!r}: {masks} masks and no sentence or no mask; a prompt template has one mask "
                          "and the input")
    return "".join(out)  # a leading space stays: LM-BFF encodes "*cls*_This" as " This" (ĠThis)


def search_templates(model, tokenizer, task: str, examples: Sequence[tuple[Sequence[str], str]], beam: int,
                     progress: Callable = eval_progress) -> list[dict]:
    """Every template of every format of ``task`` (LM-BFF's output order), with its score and format."""
    if task not in FORMATS:
        raise ConfigError(f"no LM-BFF template-search format for task {task!r} (known: {', '.join(FORMATS)})")
    mapping = MAPPINGS[task]
    sentinel0 = tokenizer.convert_tokens_to_ids("<extra_id_0>")
    out = []
    for number, fmt in enumerate(FORMATS[task]):
        inputs = batch_inputs([(texts, mapping[label]) for texts, label in examples], fmt, tokenizer)
        found = beam_search(model, inputs, sentinel0, tokenizer.eos_token_id, beam, progress=progress)
        for ids, ll in found[: beam // 2] if fmt.keep_half else found:
            out.append({"lmbff": lmbff_template(ids, fmt, tokenizer), "ids": ids, "log_likelihood": ll,
                        "format": number})
    return out

