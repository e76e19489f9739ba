"""Fine-tuning and Prompt Tuning on fixed weights equal THUDM/P-tuning-v2's own models (@b1520c9), from a golden.

tests/golden/parity/superglue/heads.json holds what the reference's ``get_model`` built and computed
(``python -m bench.parity superglue --ref ...``): without ``--prefix``/``--prompt`` transformers'
``AutoModelForSequenceClassification`` / ``AutoModelForMultipleChoice`` (the fine-tuning rows), with
``--prompt`` its ``Bert/RobertaPromptFor*`` (the Prompt Tuning rows); on the weights of
``bench/parity/superglue_heads.py`` and its own batch: logits, loss, what it trains, and how its
``from_pretrained`` initialised the modules the checkpoint lacks.
"""

from __future__ import annotations

import copy

import pytest
import torch

from bench.errors import ConfigError
from bench.methods.finetune import FineTune
from bench.methods.prompt_classifier import PromptClassifier
from bench.parity import superglue as P
from bench.parity import superglue_heads as H
from bench.parity.golden import REL_TOL, load_golden, max_rel_diff

GOLDEN = load_golden("superglue", "heads")["cases"]


@pytest.fixture(scope="module")
def built(tiny_backbone):
    """Per case: (task, method with the fixed weights, its weights as initialised, what requires grad)."""
    cache = {}

    def get(case: H.HeadCase):
        if case.name not in cache:
            torch.manual_seed(0)
            task_obj, method = P.build_head_case(case, tiny_backbone(case.model), fixed=False)
            named = H.named_weights(method)
            init = {H.reference_name(case, n): p.detach().clone() for n, p in named.items()}
            trainable = {H.reference_name(case, n) for n, p in named.items() if p.requires_grad}
            cache[case.name] = (task_obj, H.suite_method(case, method, fixed=True), init, trainable)
        return cache[case.name]

    return get


def test_every_case_has_a_golden():
    assert sorted(GOLDEN) == sorted(c.name for c in H.CASES)


@pytest.mark.parametrize("case", H.CASES, ids=[c.name for c in H.CASES])
def test_logits_and_loss_equal_the_reference(built, case):
    task_obj, method, _, _ = built(case)
    ref = GOLDEN[case.name]
    ours = H.suite_outputs(task_obj, method, ref["keys"])
    assert torch.tensor(ours["logits"]).shape == torch.tensor(ref["logits"]).shape
    assert max_rel_diff(ours["logits"], ref["logits"]) < REL_TOL
    assert max_rel_diff(ours["loss"], ref["loss"]) < REL_TOL
    # the suite's method: the family's class, with every weight the reference was handed
    assert isinstance(method, FineTune if case.family == "finetune" else PromptClassifier)
    assert set(H.reference_weights(case, method)) == set(ref["init"])


@pytest.mark.parametrize("case", H.CASES, ids=[c.name for c in H.CASES])
def test_initialisation_follows_the_references_from_pretrained(built, case):
    """N(0, 0.02) weights and zero biases for every module the checkpoint lacks, on both sides."""
    _, _, ours, _ = built(case)
    ref = GOLDEN[case.name]["init"]
    assert set(ours) == set(ref)
    for name, stats in ref.items():
        p = ours[name]
        assert p.numel() == stats["n"], name
        if name.endswith("bias"):
            assert stats["absmax"] == 0.0 and float(p.abs().max()) == 0.0, name
        else:  # a sample std of n >= 64 draws of N(0, 0.02)
            assert abs(stats["std"] - 0.02) < 0.005 and abs(float(p.std()) - 0.02) < 0.005, name


@pytest.mark.parametrize("case", H.CASES, ids=[c.name for c in H.CASES])
def test_what_each_side_trains(built, case):
    """The same head-side parameters train; the backbone is tuned in fine-tuning except COPA (flagged)."""
    _, method, _, trainable = built(case)
    ref = GOLDEN[case.name]
    backbone = sum(p.numel() for p in method.backbone.model.parameters() if p.requires_grad)
    if case.family == "prompt":
        assert trainable == set(ref["trainable"]) and backbone == ref["backbone_trainable"] == 0
    elif case.multiple_choice:  # get_trainer.py: fix_bert=True for multiple choice; sgv2_finetune_copa freezes too
        assert ref["backbone_trainable"] == 0 and set(ref["trainable"]) == {"classifier.weight", "classifier.bias"}
        assert trainable == set(ref["trainable"]) and backbone == 0 and not method.tunes_backbone
    else:  # the pooler is part of the tuned backbone on both sides (the reference counts it in bert.*)
        assert trainable - {n for n in trainable if ".pooler." in n} == set(ref["trainable"])
        assert backbone > 0 and ref["backbone_trainable"] > 0


def test_freeze_backbone_reproduces_the_references_multiple_choice_fine_tuning(tiny_backbone):
    """``freeze_backbone: true``: the head alone trains (pooler frozen), backbone dropout live in training."""
    case = next(c for c in H.CASES if c.family == "finetune" and c.task == "copa" and c.arch == "bert")
    method = FineTune(head="auto_model", init="reference", freeze_backbone=True)
    method.setup(copy.deepcopy(tiny_backbone(case.model)))
    method.set_num_labels(1)
    trainable = {H.reference_name(case, n) for n, p in H.named_weights(method).items() if p.requires_grad}
    assert trainable == set(GOLDEN[case.name]["trainable"])
    assert not any(p.requires_grad for p in method.backbone.model.parameters()) and not method.tunes_backbone
    method.train_mode()
    assert method.backbone.model.training and method.head.training


def test_double_embedding_is_what_makes_the_prompt_logits_equal(built):
    """Feeding the input embeddings once (no second pass through the embedding layer) misses the reference."""
    case = next(c for c in H.CASES if c.name == "prompt_rte_bert")
    task_obj, method, _, _ = built(case)
    ref = GOLDEN[case.name]
    base = method._base()
    original = base.embeddings.forward

    def once(input_ids=None, token_type_ids=None, inputs_embeds=None, **kwargs):
        return inputs_embeds if inputs_embeds is not None else original(input_ids=input_ids,
                                                                        token_type_ids=token_type_ids, **kwargs)

    base.embeddings.forward = once
    try:
        ours = H.suite_outputs(task_obj, method, ref["keys"])
    finally:
        base.embeddings.forward = original
    assert max_rel_diff(ours["logits"], ref["logits"]) > 1e-3


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="head must be one of"):
        FineTune(head="pooler")
    with pytest.raises(ConfigError, match="choice_pool"):
        PromptClassifier(choice_pool="cls")
    with pytest.raises(ConfigError, match="length >= 1"):
        PromptClassifier(length=0)
