"""Text-to-text scoring (Lester et al. 2021 on T5): the encoder reads the input, the decoder produces the
label string itself (no ``<extra_id_0>`` sentinel), followed by ``</s>``.

A label string's score is ``sum_t log p(y_t | y_<t, input)`` over its tokens and the closing ``</s>``,
teacher-forced from the decoder start token; the prediction is the best-scoring label (rank
classification: the eval form of google-research/prompt-tuning's T5 classification tasks, whose
exact-match against generated text agrees with it whenever the generated text is a label).
The template's target slot only marks where a cloze form would put the answer: its sentinel is
dropped from the encoder input (soft-prompt positions after it move up by one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench.errors import ConfigError
from bench.prompts.multitoken import Entry
from bench.prompts.render import SENTINEL, RenderedPrompt
from bench.prompts.template import Field, Soft, Target, Template
from bench.prompts.verbalizer import Verbalizer


def input_text(template: Template, fields: Mapping[str, object]) -> str:
    """The encoder's input as one string (what T5's preprocessors write): fields filled, the target slot and
    the whitespace right before it dropped. Templates with pseudo tokens have no such string."""
    if any(isinstance(s, Soft) for s in template.segments):
        raise ConfigError(f"template {template.text!r} has pseudo tokens: its input is not a plain string")
    parts: list[str] = []
    for i, seg in enumerate(template.segments):
        if isinstance(seg, Target):
            if i and not isinstance(template.segments[i - 1], Field) and parts:
                parts[-1] = parts[-1].rstrip()  # the template's own space before [MASK], never a field's text
        else:
            parts.append(seg.value(fields) if isinstance(seg, Field) else seg.text)
    return "".join(parts)


def target_strings(labels: Sequence[str] | None, verbalizer: Verbalizer | None, choices: Sequence[str]) -> list[str]:
    """The strings rank classification scores, one per option: each label's string, or for a choice task
    (``labels`` None) the choices themselves unless the verbalizer names them by position ("0", "1", ...;
    T5's COPA writes "choice1" / "choice2")."""
    if labels is not None:
        if verbalizer is None:
            raise ConfigError("text-to-text scoring needs a label string per label (the template's verbalizer)")
        return [verbalizer.label_words[label][0] for label in labels]
    if verbalizer is not None:
        missing = [str(i) for i in range(len(choices)) if str(i) not in verbalizer.label_words]
        if missing:
            raise ConfigError(f"verbalizer of a choice task names options by position; missing {missing}")
        return [verbalizer.label_words[str(i)][0] for i in range(len(choices))]
    return list(choices)


def label_ids(text: str, tokenizer) -> list[int]:
    """The decoder targets of one label string: its tokens plus ``</s>`` (T5's tokenizer appends it)."""
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    if len(ids) < 2:
        raise ConfigError(f"label string {text!r} has no tokens")
    return ids


def text2text_entry(rendered: RenderedPrompt, targets: Sequence[int], tokenizer) -> Entry:
    """Score ``targets`` (from :func:`label_ids`) as the whole decoder output for ``rendered``'s input."""
    if rendered.decoder_input_ids is None:
        raise ConfigError("text-to-text scoring needs an encoder-decoder (seq2seq) model")
    sentinel = tokenizer.convert_tokens_to_ids(SENTINEL)
    ids, soft = list(rendered.input_ids), list(rendered.soft_positions)
    if sentinel in ids:
        cut = ids.index(sentinel)
        ids = ids[:cut] + ids[cut + 1:]
        soft = [p - 1 if p > cut else p for p in soft]
    start = int(rendered.decoder_input_ids[0])
    tokens = list(targets)
    return Entry(ids, list(range(len(tokens))), tokens, [start, *tokens[:-1]], soft, "seq2seq")
