"""The references' optimizer by execution (transformers' ``AdamW`` and ``get_linear_schedule_with_warmup`` run in
PET's / PT-Fewshot's (3.0.2), LM-BFF's (3.4.0) and P-Tuning v2's (4.11.3) environments, golden ``optimizer``): the
suite's ``trainer.optimizer: adamw_hf`` with ``trainer.warmup_rule: hf`` (those recipes' defaults) takes the same
10 steps on the same gradients; torch's AdamW and the suite's warmup do not (docs/fewglue.md, differences 3, 5)."""

import math

import pytest
import torch

from bench.legacy_adamw import LegacyAdamW
from bench.parity import fewglue_optim as fo
from bench.parity.golden import load_golden, max_rel_diff


def _flat(run: dict) -> torch.Tensor:
    return torch.tensor([x for step in run["params"] for t in step for x in torch.tensor(t).view(-1).tolist()],
                        dtype=torch.float64)


def _moved(run: dict) -> float:
    """The largest change of any parameter from its initial value over the run (the scale of the updates)."""
    init = torch.cat([torch.tensor(g["init"], dtype=torch.float64).view(-1) for g in fo.inputs()["groups"]])
    return float((_flat(run).view(fo.STEPS, -1) - init).abs().max())


ENVIRONMENTS = ("transformers 3.0.2", "transformers 3.4.0", "transformers 4.11.3")  # PET/PT-Fewshot, LM-BFF, P-Tuning v2


@pytest.fixture(scope="module")
def runs():
    return load_golden("fewglue", fo.GOLDEN)["environments"]


@pytest.fixture(scope="module")
def gold(runs):
    return next(run for label, run in runs.items() if label.startswith(ENVIRONMENTS[0]))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_adamw_hf_with_hf_warmup_takes_the_references_steps(env, runs):
    theirs = next(run for label, run in runs.items() if label.startswith(env + " "))
    ours = fo.suite_run("adamw_hf", "hf")
    assert ours["lrs"] == pytest.approx(theirs["lrs"], rel=1e-12, abs=0.0)
    assert theirs["lrs"][0] == 0.0 and theirs["lrs"][fo.WARMUP] == fo.LR  # the first step runs at lr 0
    assert float((_flat(ours) - _flat(theirs)).abs().max()) <= 1e-6 * _moved(theirs)


def test_torch_adamw_and_the_suite_warmup_differ(gold):
    # the suite's warmup starts at lr / 3: the parameters end half an update away; torch's AdamW alone moves
    # them by ~1e-4 of the updates (eps inside the bias correction, decay before the step)
    suite = fo.suite_run("adamw", "suite")
    assert max_rel_diff(suite["lrs"][0], fo.LR / fo.WARMUP) == 0.0
    assert float((_flat(suite) - _flat(gold)).abs().max()) > 0.1 * _moved(gold)
    torch_only = fo.suite_run("adamw", "hf")
    assert float((_flat(torch_only) - _flat(gold)).abs().max()) > 1e-5 * _moved(gold)


def test_one_legacy_step_by_hand():
    # step 1: m = 0.1 g, v = 0.001 g^2, step size lr * sqrt(1 - 0.999) / (1 - 0.9), eps added to sqrt(v);
    # then the updated weight decays by lr * wd
    lr, wd, eps, p0, g = 0.01, 0.1, 1e-8, 0.5, -0.2
    param = torch.nn.Parameter(torch.tensor([p0], dtype=torch.float64))
    opt = LegacyAdamW([param], lr=lr, eps=eps, weight_decay=wd)
    param.grad = torch.tensor([g], dtype=torch.float64)
    opt.step()
    m, v = 0.1 * g, 0.001 * g * g
    p1 = p0 - lr * math.sqrt(1 - 0.999) / (1 - 0.9) * m / (math.sqrt(v) + eps)
    assert float(param) == pytest.approx(p1 * (1 - lr * wd), rel=1e-12)


@pytest.mark.parametrize("preset", ["fewglue_pet_rte", "fewglue_pet_distill_copa", "fewglue_ipet_g1_wic",
                                    "fewglue_ptuning_rte"])
def test_fewglue_presets_train_as_the_references(preset):
    from omegaconf import OmegaConf

    from bench.study import compose_job, hydra_context

    with hydra_context():
        trainer = OmegaConf.to_container(compose_job(preset, "tiny-albert", []), resolve=True)["trainer"]
    assert (trainer["optimizer"], trainer["warmup_rule"]) == ("adamw_hf", "hf")
