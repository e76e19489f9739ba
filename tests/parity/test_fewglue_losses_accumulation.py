"""Item H by execution: the suite's trainer with ``trainer.grad_accumulation_steps`` reproduces PET's accumulated loss
(golden ``losses_tiny-albert``: PET's losses per micro-batch of 2 on its first 8 training examples, and their mean,
what its ``wrapper.train`` backpropagates over one optimizer step). The PET preset's trainer drives the suite's task
through :func:`bench.train.fit_steps` with micro-batches of 2 and 4 accumulation steps, at lr 0 (the shared tiny
ALBERT keeps its weights), the model in eval mode as PET's golden run (no dropout)."""

import pytest
import torch

from bench.parity import fewglue_losses as fl
from bench.parity.golden import REL_TOL, load_golden, max_rel_diff
from bench.paths import data_dir
from bench.train import fit_steps

CASES = [c for c in fl.CASES if not (c.mlm or c.classifier or c.task == "ReCoRD")]


class PetOrder:
    """The suite's task on PET's first examples, in PET's order and micro-batches (as fewglue_losses.suite_case)."""

    def __init__(self, runner, case) -> None:
        self.runner, self.items, self.micro = runner, runner.items("train", train=True)[: case.n], case.micro

    def train_batches(self, batch_size, generator):
        assert batch_size == self.micro
        return [self.runner.collate(self.items[i : i + batch_size]) for i in range(0, len(self.items), batch_size)]

    def loss(self, scores, batch):
        return self.runner.loss(scores, batch)

    def evaluate(self, split, scorer):
        return {}, 0.0


@pytest.fixture(scope="module")
def gold():
    return load_golden("fewglue", fl.GOLDEN)


@pytest.fixture(scope="module")
def pet_head_eps():
    """The tiny ALBERT the comparisons share, with the head eps the PET preset loads it with; restored after."""
    from bench.backbones.configs import head_eps_for
    from bench.backbones.loading import set_mlm_head_layer_norm_eps
    from bench.parity.fewglue import _backbone, _composed

    backbone = _backbone(fl.MODEL, "pet")
    before = backbone.model.predictions.LayerNorm.eps
    set_mlm_head_layer_norm_eps(backbone.model, backbone.arch, head_eps_for(_composed(fl.MODEL, "RTE")["model"]))
    yield
    set_mlm_head_layer_norm_eps(backbone.model, backbone.arch, before)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_accumulated_micro_batches_give_pets_accumulated_loss(case, gold, pet_head_eps):
    from bench.parity.fewglue import _composed, suite_task

    if not (data_dir() / "fewglue" / case.task / "train.jsonl").is_file():
        pytest.skip(f"FewGLUE {case.task} is not prepared (make data)")
    theirs = gold["cases"][case.name]
    n_micro = case.n // case.micro
    trainer = {**_composed(fl.MODEL, case.task)["trainer"], "lr": 0.0, "batch_size": case.micro,
               "grad_accumulation_steps": n_micro, "max_steps": 1, "max_epochs": 1}
    assert _composed(fl.MODEL, case.task)["trainer"]["batch_size"] == case.micro  # the preset's micro-batch is PET's
    runner = suite_task(fl.MODEL, case.task, case.pattern)
    model, before = runner.backbone.model, [p.detach().clone() for p in runner.method.trainable_parameters()]
    steps = fit_steps(runner.method, PetOrder(runner, case), trainer, "dev32", progress=False)
    terms = []
    try:
        batch = next(steps)
        while True:
            model.eval()  # PET's golden losses: no dropout
            term = steps.send(runner.loss(runner.method.scorer()(batch), batch))
            terms.append(float(term.detach()))
            term.backward()
            batch = next(steps)
    except StopIteration as done:
        result = done.value
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
    assert result.steps == 1 and len(terms) == n_micro  # one optimizer step after PET's 4 micro-batches
    assert max_rel_diff([t * n_micro for t in terms], theirs["micro_losses"]) <= REL_TOL  # each loss / 4
    assert max_rel_diff(sum(terms), theirs["accumulated_loss"]) <= REL_TOL  # what PET's step backpropagates
    assert all(torch.equal(a, b) for a, b in zip(before, runner.method.trainable_parameters(), strict=True))
