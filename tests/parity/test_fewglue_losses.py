"""PET's training losses with fixed weights (timoschick/pet @21d32de in its own environment, goldens
``losses_<model>``): every task x PET pattern on the tiny ALBERT, BERT and RoBERTa, PET's first 8 training examples
per case, eval mode. The suite's loss, its
losses per micro-batch of 2 and its label logits agree to 1e-5 relative once the masked-LM head's LayerNorm has
transformers 3.0.2's eps, which the PET preset's ``model.mlm_head_layer_norm_eps`` sets on load (docs/parity.md,
FewGLUE; docs/fewglue.md)."""

import pytest
import torch

from bench.parity import fewglue_losses as fl
from bench.parity.golden import REL_TOL, load_golden, max_rel_diff
from bench.paths import data_dir

PET_HEAD_EPS = 1e-5  # transformers 3.0.2's AlbertMLMHead: nn.LayerNorm(embedding_size), torch's default eps
assert fl.PET_HEAD_EPS == PET_HEAD_EPS
CASES = [c for c in fl.CASES if not (c.mlm or c.classifier or c.task == "ReCoRD")]


@pytest.fixture(scope="module")
def gold():
    return load_golden("fewglue", fl.GOLDEN)


@pytest.fixture(scope="module")
def pet_eps() -> float:
    """The MLM-head LayerNorm eps of the tiny ALBERT loaded with the PET preset's model config
    (``model.mlm_head_layer_norm_eps``, applied by bench.backbones.load_backbone)."""
    from bench.backbones import load_backbone
    from bench.parity.fewglue import _composed

    loaded = load_backbone(_composed(fl.MODEL, "RTE")["model"], device="cpu", dtype="fp32")
    return loaded.model.predictions.LayerNorm.eps


def test_the_pet_preset_loads_albert_with_transformers_302s_head_eps(pet_eps):
    assert pet_eps == PET_HEAD_EPS


@pytest.fixture
def head_eps():
    """Give the cached tiny ALBERT the suite's comparisons use an MLM-head LayerNorm eps for one test (by the
    loader's own setter, bench.backbones.loading.set_mlm_head_layer_norm_eps), then restore it."""
    from bench.backbones.loading import set_mlm_head_layer_norm_eps
    from bench.parity.fewglue import _backbone

    backbone = _backbone(fl.MODEL, "pet")
    before = backbone.model.predictions.LayerNorm.eps

    def set_eps(value: float) -> None:
        set_mlm_head_layer_norm_eps(backbone.model, backbone.arch, value)

    yield set_eps
    set_eps(before)


def _needs_data(task: str) -> None:
    if not (data_dir() / "fewglue" / task / "train.jsonl").is_file():
        pytest.skip(f"FewGLUE {task} is not prepared (make data)")


# every task x PET pattern on each tiny model (fl.grid; docs/parity.md's loss table)
GRID = [(m, c) for m in fl.MODELS for c in fl.grid() if not (c.mlm or c.classifier or c.task == "ReCoRD")]


@pytest.fixture(scope="module")
def golds():
    return {m: load_golden("fewglue", fl.golden_name(m)) for m in fl.MODELS}


@pytest.mark.parametrize(("model", "case"), GRID, ids=[f"{m}-{c.name}" for m, c in GRID])
def test_loss_and_logits_match_pets(model, case, golds, head_eps, pet_eps):
    from bench.errors import ConfigError

    _needs_data(case.task)
    if model == fl.MODEL:
        head_eps(pet_eps)  # ALBERT's masked-LM head LayerNorm (BERT's and RoBERTa's read config.layer_norm_eps)
    theirs = golds[model]["cases"][case.name]
    if "error" in theirs:  # PET refuses the pattern here (a label word of several tokens on this vocabulary)
        assert "does not correspond to a single token" in theirs["error"]
        with pytest.raises(ConfigError, match="tokens"):
            fl.suite_case(case, model=model)
        return
    ours = fl.suite_case(case, model=model)
    assert ours["uids"] == [g.replace("train-p", "train-") for g in theirs["guids"]]  # PET's examples, its order
    assert max_rel_diff(ours["loss"], theirs["loss"]) <= REL_TOL
    assert max_rel_diff(ours["micro_losses"], theirs["micro_losses"]) <= REL_TOL
    if "logits" in theirs:  # relative to the batch's largest logit: single logits near 0 make a ratio meaningless
        assert fl.scaled_diff(ours["logits"], theirs["logits"]) <= REL_TOL


def test_todays_head_eps_is_the_difference(gold, head_eps):
    # today's transformers reads config.layer_norm_eps (1e-12) for that LayerNorm: the logits move by ~2e-4
    _needs_data("RTE")
    from bench.parity.fewglue import _backbone

    assert _backbone(fl.MODEL, "pet").model.config.layer_norm_eps == 1e-12
    head_eps(1e-12)
    case = next(c for c in CASES if c.name == "rte_p0")
    ours = fl.suite_case(case)
    theirs = torch.tensor(gold["cases"][case.name]["logits"])
    assert (torch.tensor(ours["logits"]) - theirs).abs().max() > 1e-4


@pytest.mark.parametrize("model", fl.MODELS)
def test_auxiliary_mlm_loss_matches_pets_on_its_masking(model, golds, head_eps, pet_eps):
    if model == fl.MODEL:
        head_eps(pet_eps)
    case = next(c for c in fl.CASES if c.mlm)
    theirs = golds[model]["cases"][case.name]
    assert theirs["picked_padding"] > 0 and theirs["picked_pattern_mask"] > 0  # item G on every model
    assert max_rel_diff(fl.suite_mlm(case, theirs, model), theirs["loss"]) <= REL_TOL


def test_the_grid_covers_every_pet_pattern_and_pet_refuses_only_multi_token_words(golds):
    from bench.parity.fewglue import PET_TASK, patterns

    names = {c.name for c in fl.grid()}
    assert {f"{t.lower()}_p{p}" for t in PET_TASK for p in patterns(t)} <= names
    assert {c.name for c in fl.CASES} <= names
    refused = {(m, k) for m in fl.MODELS for k, v in golds[m]["cases"].items() if "error" in v}
    # the tiny BERT's WordPiece splits "neither" (CB pattern 4) and "False" (MultiRC pattern 3), as the inputs
    # goldens record; ALBERT and RoBERTa keep every label word whole
    assert refused == {("tiny-bert", "cb_p4"), ("tiny-bert", "multirc_p3")}


def test_item_g_pets_masking_picks_padding_and_the_patterns_mask(gold, tiny_backbone):
    # PET's _mask_tokens (inputs padded to 256, get_special_tokens_mask marking [CLS]/[SEP] only) picks padding and
    # the pattern's [MASK]; the suite's masking (bench.superglue.aux_mlm) excludes both
    theirs = gold["cases"][next(c for c in fl.CASES if c.mlm).name]
    assert theirs["picked_padding"] > 0 and theirs["picked_pattern_mask"] > 0 and theirs["picked_other_special"] == 0
    labels, attention = torch.tensor(theirs["labels"]), torch.tensor(theirs["attention_mask"])
    assert int(((labels != -100) & (attention == 0)).sum()) == theirs["picked_padding"]
    tok = tiny_backbone("tiny-albert").tokenizer
    ids = [tok.cls_token_id, 100, tok.mask_token_id, 200, tok.sep_token_id]
    assert tok.get_special_tokens_mask(ids, already_has_special_tokens=True) == [1, 0, 1, 0, 1]


def test_item_h_one_batch_vs_pets_accumulated_micro_batches(gold):
    # CE is a mean over examples: 4 equal micro-batches average to the one-batch value. COPA's hinge and WSC's
    # token mean are not linear in the batch: PET's accumulated loss differs from the one-batch loss
    for name in ("rte_p0", "cb_p4", "boolq_p1", "wic_p2", "multirc_p0"):
        case = gold["cases"][name]
        assert max_rel_diff(case["accumulated_loss"], case["loss"]) <= REL_TOL, name
    for name, at_least in (("copa_p0", 1e-3), ("wsc_p0", 1e-4)):
        case = gold["cases"][name]
        assert max_rel_diff(case["accumulated_loss"], case["loss"]) > at_least, name
        assert abs(sum(case["micro_losses"]) / len(case["micro_losses"]) - case["accumulated_loss"]) <= 1e-6


def test_item_e_pets_copa_classifier_reads_one_pair_the_suite_two_sequences(gold, tiny_backbone):
    # PET's distilled COPA model: a 2-label classifier on ("premise so choice1", "premise so choice2") (choices
    # lower-cased first, final punctuation kept); the suite's with task.copa_classifier_inputs=choices: multiple
    # choice, one sequence per choice (the preset's pet_pair: tests/parity/test_fewglue_copa_pair.py)
    import json
    import string

    _needs_data("COPA")
    case = next(c for c in fl.CASES if c.classifier)
    theirs = gold["cases"][case.name]["examples"]
    ours = fl.suite_classifier_inputs(case, ["task.copa_classifier_inputs=choices"])
    assert len(theirs) == len(ours) == case.n
    assert all(ex["num_labels"] == 2 for ex in theirs) and all(len(seqs) == 2 for seqs in ours)
    row = json.loads((data_dir() / "fewglue" / "COPA" / "train.jsonl").read_text().splitlines()[0])
    joiner = "because" if row["question"] == "cause" else "so"
    premise = row["premise"].rstrip(string.punctuation)
    a, b = (f"{premise} {joiner} {row[k][0].lower()}{row[k][1:]}" for k in ("choice1", "choice2"))
    tok = tiny_backbone("tiny-albert").tokenizer
    assert theirs[0]["input_ids"] == tok(a, b)["input_ids"]  # PET's pair, re-derived by hand
    assert theirs[0]["input_ids"] not in ours[0]


def test_record_loss_differs_from_pets(gold, head_eps, pet_eps):
    # PET's RecordTaskHelper.train_step: per candidate slot a hinge on mean token cross-entropies; the suite's
    # choice_loss=hinge: per example, on summed log-probabilities. On the training examples whose inputs are
    # identical to PET's, every loss differs (all have multi-token candidates). PET's own train_step fails on
    # the batch of 8 (it views a permuted tensor): recorded from its run. The preset's choice_loss=pet_record
    # gives PET's losses (tests/parity/test_fewglue_record_loss.py)
    _needs_data("ReCoRD")
    head_eps(pet_eps)
    record = gold["cases"]["record_p0"]
    assert record["loss"] is None and "view size is not compatible" in record["loss_error"]
    rows = fl.record_losses("hinge")
    assert len(rows) >= 10
    for row in rows:
        assert row["max_candidate_tokens"] > 1
        assert abs(row["suite"] - row["pet"]) > 0.1 * abs(row["pet"]), row


def test_item_g_flag_reproduces_pets_masking(gold, tiny_backbone):
    # trainer.aux_mlm_masking=pet: PET's own draws (same seed), padding to 256 and only [CLS]/[SEP] exempt;
    # PET's unmasked inputs are rebuilt from its labels (the original id wherever it picked one)
    from bench.superglue.aux_mlm import pet_masked_batch

    theirs = gold["cases"][next(c for c in fl.CASES if c.mlm).name]
    masked, labels = torch.tensor(theirs["input_ids"]), torch.tensor(theirs["labels"])
    original = torch.where(labels != -100, labels, masked)
    seqs = [row[:n] for row, n in zip(original.tolist(), theirs["lengths"], strict=True)]
    tok = tiny_backbone("tiny-albert").tokenizer
    generator = torch.Generator().manual_seed(theirs["seed"])
    ours, our_labels, attention = pet_masked_batch(seqs, fl.MAX_LENGTH, tok.pad_token_id, tok, generator)
    assert torch.equal(ours, masked) and torch.equal(our_labels, labels)
    assert attention.tolist() == theirs["attention_mask"]
