"""Lester et al.'s text-to-text Prompt Tuning on T5: a label string's score is the teacher-forced log-likelihood
of its tokens and </s> from the decoder start, recomputed here with the plain transformers forward; the runner's
text2text form trains only the prompt with Adafactor."""

import copy

import pytest
import torch
import yaml

from bench.backbones.scoring import target_logits
from bench.errors import ConfigError
from bench.paths import REPO_ROOT
from bench.prompts import render, templates_for, verbalizer_for
from bench.prompts.multitoken import entries_batch
from bench.prompts.render import SENTINEL
from bench.prompts.text2text import input_text, label_ids, target_strings, text2text_entry
from bench.superglue.batching import unit_log_probs

FIELDS = {"premise": "The cat sat on the mat.", "hypothesis": "A cat is sitting.", "hypothesis_bare": "A cat is sitting"}


def conf(group: str, name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "conf" / group / f"{name}.yaml").read_text())


def test_label_string_scores_equal_a_plain_decoder_recomputation(tiny_backbone):
    backbone = tiny_backbone("tiny-t5")
    model, tok = backbone.model, backbone.tokenizer
    template = templates_for(conf("template", "t5_rte"), family="seq2seq")[0]
    rendered = render(template, FIELDS, tok, "seq2seq", max_length=128, num_target_tokens=1)
    strings = ["entailment", "not_entailment"]
    entries = [text2text_entry(rendered, label_ids(s, tok), tok) for s in strings]
    assert tok.convert_tokens_to_ids(SENTINEL) not in entries[0].input_ids  # no cloze slot in the input
    batch = entries_batch(entries, tok.pad_token_id)
    with torch.no_grad():
        logits = target_logits(model, batch)
    n_slots = [len(e.token_ids) for e in entries]
    owner = torch.repeat_interleave(torch.arange(len(entries)), torch.tensor(n_slots))
    ours = unit_log_probs(logits, torch.tensor([t for e in entries for t in e.token_ids]), owner, len(entries))
    for i, text in enumerate(strings):
        labels = torch.tensor([tok(text)["input_ids"]])  # T5's tokenizer appends </s>
        assert labels[0, -1].item() == tok.eos_token_id
        with torch.no_grad():
            out = model(input_ids=torch.tensor([entries[i].input_ids]), labels=labels)  # shift-right inside
        plain = torch.log_softmax(out.logits[0].float(), -1).gather(1, labels[0][:, None]).sum()
        assert torch.allclose(ours[i], plain, atol=1e-4), (text, ours[i], plain)
        assert abs(out.loss.item() * labels.shape[1] + plain.item()) < 1e-3  # HF's mean NLL agrees
    assert not torch.allclose(ours[0], ours[1])


@pytest.mark.slow
def test_text2text_prompt_tuning_runs_and_trains_only_the_prompt(tiny_backbone, tmp_path):
    from bench.methods.prompt_tuning import PromptTuning
    from bench.superglue.runner import run_classification

    backbone = copy.deepcopy(tiny_backbone("tiny-t5"))
    method = PromptTuning(length=4, init="labels", init_labels=["entailment", "not_entailment"], form="text2text")
    method.setup(backbone)
    before = {n: p.detach().clone() for n, p in backbone.model.named_parameters()}
    prompt_before = [p.detach().clone() for p in method.trainable_parameters()]
    cfg = {"seed": 1, "paths": {}, "template": conf("template", "t5_rte"),
           "task": {"dataset": "RTE", "variant": "superglue", "limit": 4, "max_length": 96, "batch_size": 4},
           "trainer": {"optimizer": "adafactor", "lr": 0.3, "weight_decay": 1e-5, "batch_size": 4, "max_epochs": 1,
                       "max_steps": 1, "schedule": "constant", "early_stopping_patience": 1}}
    payload = run_classification(cfg, backbone, method)
    assert payload["extra"]["mode"] == "text2text"
    assert payload["metrics"]["val"]["overall"]["n"] == 4
    assert all(torch.equal(p, before[n]) for n, p in backbone.model.named_parameters())
    assert any(not torch.equal(a, b.detach()) for a, b in zip(prompt_before, method.trainable_parameters(), strict=True))


def test_input_text_drops_the_target_slot_and_only_the_templates_space_before_it():
    template = templates_for(conf("template", "t5_rte"), family="seq2seq")[0]
    fields = {**FIELDS, "premise": "The cat sat on the mat. "}  # a field's own trailing space stays
    assert input_text(template, fields) == "rte hypothesis: A cat is sitting. premise: The cat sat on the mat. "


def test_target_strings_by_label_by_position_or_the_choices():
    rte = verbalizer_for(conf("template", "t5_rte"))
    assert target_strings(("entailment", "not_entailment"), rte, ()) == ["entailment", "not_entailment"]
    copa = verbalizer_for(conf("template", "t5_copa"))
    assert target_strings(None, copa, ("it rained", "it was sunny")) == ["choice1", "choice2"]  # T5's COPA labels
    assert target_strings(None, None, ("Obama", "Paris")) == ["Obama", "Paris"]  # ReCoRD: the entities
    with pytest.raises(ConfigError, match="label string per label"):
        target_strings(("False", "True"), None, ())


def _task(tiny_backbone, dataset: str, template: str):
    from bench.methods.prompt_tuning import PromptTuning
    from bench.superglue.task import ClassificationTask

    backbone = tiny_backbone("tiny-t5")
    method = PromptTuning(length=2, init="vocab", form="text2text")
    method.setup(copy.deepcopy(backbone))
    cfg = {"seed": 1, "paths": {}, "template": conf("template", template),
           "task": {"dataset": dataset, "variant": "fewglue", "limit": 2, "max_length": 96, "batch_size": 2}}
    return ClassificationTask(cfg, backbone, method)


def test_copa_text2text_scores_t5s_label_names_not_the_choice_texts(tiny_backbone):
    task = _task(tiny_backbone, "COPA", "t5_copa")
    tok = task.tok
    item = task.items("val")[0]
    assert [e.token_ids for e in item.entries] == [label_ids("choice1", tok), label_ids("choice2", tok)]


def test_wsc_text2text_is_refused_with_the_reason(tiny_backbone):
    with pytest.raises(ConfigError, match="T5's WSC is generative"):
        _task(tiny_backbone, "WSC", "t5_wsc")
