"""How a vocabulary-space method scores a SuperGLUE task (the modes of :mod:`bench.superglue.task`), decided
once from the task, template, verbalizer and backbone; refusals name the fix."""

from __future__ import annotations

from bench.errors import ConfigError
from bench.prompts.template import Field, Target
from bench.prompts.verbalizer import check_label_words


def check_left_to_right(template) -> None:
    """A left-to-right model reads nothing after the target slot: no field may follow it."""
    after = template.segments[next(i for i, seg in enumerate(template.segments) if isinstance(seg, Target)) + 1 :]
    late = [seg.name for seg in after if isinstance(seg, Field)]
    if late:
        raise ConfigError(f"template {template.text!r} puts {late} after the target slot; a left-to-right (clm) "
                          "model never reads them: use a template that ends with [MASK] (e.g. template=gpt3_<task>)")


def vocab_mode(task) -> str:
    """``text2text``, ``span``, ``options`` or ``words`` for a :class:`bench.superglue.task.ClassificationTask`
    whose template, verbalizer and answer field are set."""
    if getattr(task.method, "form", "cloze") == "text2text":  # Lester's T5: the decoder writes the label
        if task.task == "WSC" and task.verbalizer is None:
            raise ConfigError("form=text2text on WSC: T5's WSC is generative (wsc_simple: the decoder writes the "
                              "referent, trained on correct referents only, its postprocessor matches the text); "
                              "the suite has no text-to-text WSC scoring (not implemented; docs/parity.md, T5 "
                              "formats)")
        if task.family != "seq2seq" or task.answer_field or (task.labels and task.verbalizer is None):
            raise ConfigError("form=text2text needs an encoder-decoder model (T5) and label strings (a "
                              "template with a verbalizer, or a choice task)")
        return "text2text"
    if task.answer_field:
        if task.family != "mlm" or task.labels != ("False", "True"):
            raise ConfigError(f"answer_field (PET's generative WSC) needs a masked LM and a True/False task, "
                              f"got family {task.family!r}, task {task.task}")
        if task.method.uses_demonstrations:
            raise ConfigError("icl cannot demonstrate a generative (answer_field) template: use a yes/no one")
        return "span"
    if task.labels is None:
        return "options"
    if task.verbalizer is None:
        raise ConfigError(f"template {task.cfg['template'].get('name')!r} has no verbalizer for {task.task}")
    if set(task.verbalizer.labels) != set(task.labels):
        raise ConfigError(f"verbalizer labels {sorted(task.verbalizer.labels)} != {task.task} labels "
                          f"{sorted(task.labels)}")
    single = check_label_words(task.verbalizer, task.tok, prefix_space=task.target_space,
                               policy=task.multi_token, method=f"method={task.method.name}",
                               template=f"template={task.cfg['template'].get('name')}")
    return "words" if single else "options"
