"""Item E by execution: PET's distilled COPA classifier (timoschick/pet @21d32de
``CopaTaskHelper.get_sequence_classifier_inputs``, golden ``losses_tiny-albert`` case ``classifier_copa``) reads
ONE pair ("premise so choice1", "premise so choice2") with 2 labels. ``fewglue_pet_distill_copa`` and
``fewglue_ipet_distill_copa`` (``task.copa_classifier_inputs: pet_pair``) give the same input ids, no segment ids
on ALBERT, the same labels, a 2-column output in the ensemble's choice order, and on fixed head weights PET's
logits, classification loss and distillation loss."""

import math

import pytest
import torch

from bench.parity import fewglue_losses as fl
from bench.parity.golden import REL_TOL, load_golden, max_rel_diff
from bench.paths import data_dir
from bench.superglue import data as sg
from bench.superglue.classifier_items import classifier_item, copa_pet_pair

CASE = next(c for c in fl.CASES if c.classifier)


def _needs_data() -> None:
    if not (data_dir() / "fewglue" / "COPA" / "train.jsonl").is_file():
        pytest.skip("FewGLUE COPA is not prepared (make data)")


def _copa(**row) -> sg.Example:
    return sg.parse_rows("COPA", [{"idx": 0, "label": 1, **row}], "train")[0]


@pytest.mark.parametrize("model", fl.MODELS)
def test_pet_pair_inputs_and_labels_equal_pets(model):
    _needs_data()
    theirs = load_golden("fewglue", fl.golden_name(model))["cases"][CASE.name]["examples"]
    task = fl.suite_classifier_task(CASE, model=model)  # the preset as it ships: pet_pair
    items = task.items("train")[: CASE.n]
    assert task.n_out == 2 and all(ex["num_labels"] == 2 for ex in theirs)
    assert [it.example.uid for it in items] == [ex["guid"] for ex in theirs]
    assert [it.sequences for it in items] == [[ex["input_ids"]] for ex in theirs]  # one pair each, PET's ids
    # PET passes token_type_ids to BERT / XLNet only (BERT's: tests/parity/test_fewglue_classifier_inputs.py)
    assert all((it.types != []) == (model == "tiny-bert") for it in items)
    assert [it.example.label for it in items] == [ex["label"] for ex in theirs]


MLM_HEAD = {"tiny-albert": "predictions.", "tiny-bert": "cls.", "tiny-roberta": "lm_head."}  # 3.0.2's key prefixes


@pytest.mark.parametrize("model", fl.MODELS)
def test_pet_pair_classifier_losses_equal_pets_on_fixed_weights(model):
    # PET's <Arch>ForSequenceClassification (ALBERT / BERT: pooler dense + tanh on the first token, linear;
    # RoBERTa: its head's dense + tanh, out_proj) with fixed head weights (fl.classifier_head_weights) in eval mode;
    # the suite's finetune head given the same weights: logits, the labelled loss (sequence_classifier_train_step)
    # and the distillation loss on fixed teacher logits (T = 2)
    _needs_data()
    theirs = load_golden("fewglue", fl.golden_name(model))["cases"][CASE.name]
    ours = fl.suite_classifier_losses(CASE, model)
    assert max_rel_diff(ours["loss"], theirs["classifier_loss"]) <= REL_TOL
    assert max_rel_diff(ours["distillation_loss"], theirs["distillation_loss"]) <= REL_TOL
    assert fl.scaled_diff(ours["logits"], theirs["classifier_logits"]) <= REL_TOL
    assert theirs["classifier_unexpected_keys"]  # the masked-LM head, and only it, went unused
    assert not [k for k in theirs["classifier_unexpected_keys"] if not k.startswith(MLM_HEAD[model])]


def test_pet_pair_by_hand():
    # PET: premise without final punctuation, "so" (effect) / "because" (cause), the choice's first letter
    # lower-cased and its final punctuation kept
    effect = _copa(premise="The man fell.", choice1="He slipped.", choice2="He sang!", question="effect")
    assert copa_pet_pair(effect) == ("The man fell so he slipped.", "The man fell so he sang!")
    cause = _copa(premise="It broke!", choice1="It fell.", choice2="Nobody cared.", question="cause")
    assert copa_pet_pair(cause) == ("It broke because it fell.", "It broke because nobody cared.")
    mirrored = sg.copa_mirrored([effect])[1]  # PET's mirrored training example swaps the texts and the label
    assert copa_pet_pair(mirrored) == ("The man fell so he sang!", "The man fell so he slipped.")
    assert mirrored.label == 0


def test_bert_reads_pets_segment_ids(tiny_backbone):
    # PET's wrapper passes token_type_ids to BERT: 0 over [CLS] text_a [SEP], 1 over text_b [SEP]
    tok = tiny_backbone("tiny-bert").tokenizer
    ex = _copa(premise="The man fell.", choice1="He slipped.", choice2="He sang!", question="effect")
    item = classifier_item(ex, tok, {"copa_classifier_inputs": "pet_pair"}, "bert", 256)
    (ids,), (types,) = item.sequences, item.types
    a = tok("The man fell so he slipped.", add_special_tokens=False)["input_ids"]
    b = tok("The man fell so he sang!", add_special_tokens=False)["input_ids"]
    assert ids == [tok.cls_token_id, *a, tok.sep_token_id, *b, tok.sep_token_id]
    assert types == [0] * (len(a) + 2) + [1] * (len(b) + 1)


def test_choices_form_and_wrong_values():
    from bench.errors import ConfigError
    from bench.superglue.classifier_items import copa_form

    assert copa_form({}) == "choices"
    with pytest.raises(ConfigError, match="copa_classifier_inputs"):
        copa_form({"copa_classifier_inputs": "pair"})
    with pytest.raises(ConfigError, match="classifier_inputs=pet"):
        copa_form({"copa_classifier_inputs": "pet_pair", "classifier_inputs": "ptv2"})


def test_distillation_targets_line_up_with_the_two_labels():
    # the PET ensemble's unlabeled logits are per choice [choice1, choice2]; the pair classifier's label k is
    # choice k+1, so its two outputs are compared with the teacher column by column (PET's distillation_loss:
    # KL(softmax(t/T) || softmax(s/T)) summed, * T^2 / n), computed here by hand
    _needs_data()
    from bench.superglue.distill import DistillTask

    task = fl.suite_classifier_task(CASE, ["task.limit=2", "task.mirror_copa_unlabeled=false"])  # 2 rows, unmirrored
    teacher = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    dtask = DistillTask(task, teacher, temperature=2.0)
    batch = task.collate(dtask.items)
    assert batch.input_ids.shape[0] == 2  # one pair per example, not one sequence per choice
    batch.teacher = teacher
    scores = torch.tensor([[0.5, 0.0], [-1.0, 1.0]])
    want = 0.0
    for s, t in zip(scores.tolist(), teacher.tolist(), strict=True):
        q = [math.exp(x / 2) / sum(math.exp(y / 2) for y in t) for x in t]
        log_p = [x / 2 - math.log(sum(math.exp(y / 2) for y in s)) for x in s]
        want += sum(qi * (math.log(qi) - lp) for qi, lp in zip(q, log_p, strict=True))
    want = want * 4 / 2
    assert float(dtask.loss(scores, batch)) == pytest.approx(want, rel=1e-6)
    assert task.option_scores(scores, batch).tolist() == scores.tolist()  # columns stay in choice order


def test_distill_presets_default_to_pets_pair():
    from omegaconf import OmegaConf

    from bench.study import compose_job, hydra_context

    with hydra_context():
        for preset in ("fewglue_pet_distill_copa", "fewglue_ipet_distill_copa"):
            cfg = OmegaConf.to_container(compose_job(preset, "tiny-albert", []), resolve=True)
            assert cfg["task"]["copa_classifier_inputs"] == "pet_pair", preset
        cfg = OmegaConf.to_container(compose_job("fewglue_clsft_copa", "tiny-albert", []), resolve=True)
        assert cfg["task"]["copa_classifier_inputs"] == "choices"


@pytest.mark.parametrize(("model", "pooled"), [("tiny-albert", True), ("tiny-bert", True), ("tiny-roberta", False)])
def test_distill_head_is_pets_sequence_classifier_layout(model, pooled):
    # difference 13: fewglue_pet_distill_* (head=auto_model, init=reference) build PET's <Arch>ForSequenceClassification:
    # ALBERT / BERT: the pooler (dense + tanh) then one linear layer; RoBERTa: its head's dense + tanh, out_proj.
    # The new layers start N(0, initializer_range) with zero biases
    _needs_data()
    task = fl.suite_classifier_task(CASE, model=model)
    method = task.method
    method.setup(task.backbone)
    method.set_num_labels(task.n_out)
    assert (method.pooler is not None) == pooled and (method.head.dense is None) == pooled
    assert method.head.classifier.out_features == 2
    assert torch.count_nonzero(method.head.classifier.bias) == 0
    std = float(task.backbone.model.config.initializer_range)
    assert 0.5 * std < float(method.head.classifier.weight.std()) < 1.5 * std


def test_albert_pooler_is_read_from_the_checkpoint(tmp_path):
    # PET's AlbertForSequenceClassification starts from the checkpoint's albert.pooler (a masked-LM class drops it)
    import transformers as tf

    from bench.backbones.pooler import pretrained_pooler

    torch.manual_seed(0)
    config = tf.AlbertConfig(vocab_size=50, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                             num_attention_heads=2, intermediate_size=20, max_position_embeddings=32)
    tf.AlbertForPreTraining(config).save_pretrained(tmp_path)  # carries albert.pooler.{weight,bias}
    saved = tf.AlbertModel.from_pretrained(tmp_path).pooler
    pooler = pretrained_pooler(tf.AlbertForMaskedLM.from_pretrained(tmp_path), 16)
    assert pooler.source == "checkpoint"
    x = torch.randn(2, 16)
    assert torch.allclose(pooler(x), torch.tanh(saved(x)).detach(), atol=1e-6)
