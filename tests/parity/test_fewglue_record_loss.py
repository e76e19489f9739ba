"""ReCoRD's training loss by execution: PET's ``RecordTaskHelper.train_step`` (timoschick/pet @21d32de, its
torch 1.5.0; golden ``losses_tiny-albert`` case ``record_p0``, one example per call as PET can only run it) and
the suite's ``task.choice_loss: pet_record`` (``fewglue_pet_record``) on the tiny ALBERT, BERT and RoBERTa (goldens
``losses_<model>``), per training example
whose inputs equal PET's. PET pads every example to the training set's most candidates (10) with slots of no
target, whose cross-entropy torch 1.5.0 makes 0: each adds ``1 + CE+``; ``pet_record`` does the same."""

import pytest
import torch

from bench.parity import fewglue_losses as fl
from bench.parity.golden import REL_TOL, max_rel_diff
from bench.paths import data_dir
from bench.superglue.losses import pet_record_loss


@pytest.fixture
def pet_head_eps():
    """transformers 3.0.2's ALBERT masked-LM head LayerNorm eps (1e-5) for one test (docs/fewglue.md)."""
    with fl.head_eps(fl.MODEL, eps=1e-5):
        yield


@pytest.mark.parametrize("model", fl.MODELS)
def test_pet_record_equals_pets_train_step_per_example(model, pet_head_eps):
    if not (data_dir() / "fewglue" / "ReCoRD" / "train.jsonl").is_file():
        pytest.skip("FewGLUE ReCoRD is not prepared (make data)")
    rows = fl.record_losses(model=model)  # the preset's choice_loss: pet_record
    assert len(rows) == 14  # the training examples whose inputs and candidates are PET's
    assert {r["candidates"] < 10 for r in rows} == {True, False}  # padded slots counted as PET's torch counts them
    for row in rows:
        assert max_rel_diff(row["suite"], row["pet"]) <= REL_TOL, row


def test_pet_record_by_hand():
    # example 0: gold CE 4/2 = 2, wrong CEs 3 and 4 -> hinges 0, 0; one empty slot of 4 -> 1 + 2 = 3
    # example 1: gold CE 6/2 = 3, wrong CE 1 -> 1 + 3 - 1 = 3; two empty slots -> 2 * (1 + 3) = 8
    unit = torch.tensor([-4.0, -3.0, -12.0, -6.0, -1.0])
    tokens = torch.tensor([2.0, 1.0, 3.0, 2.0, 1.0])
    owner = torch.tensor([0, 0, 0, 1, 1])
    correct = torch.tensor([True, False, False, True, False])
    assert float(pet_record_loss(unit, tokens, owner, correct, 2, slots=4)) == pytest.approx((3 + 11) / 2)
    assert float(pet_record_loss(unit, tokens, owner, correct, 2)) == pytest.approx((0 + 3) / 2)  # no padding


def test_record_preset_trains_with_pet_record():
    from omegaconf import OmegaConf

    from bench.study import compose_job, hydra_context

    with hydra_context():
        cfg = OmegaConf.to_container(compose_job("fewglue_pet_record", "tiny-albert", []), resolve=True)
    assert cfg["task"]["choice_loss"] == "pet_record"
