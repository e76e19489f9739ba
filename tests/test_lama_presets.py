"""The LAMA study's presets: the released code's protocol by default, the paper's text as marked variants.

The published LAMA numbers come from THUDM/P-tuning's released code (docs/lama-protocol.md), so every
reproduction preset runs ``task.protocol=reference`` (P-Tuning also ``template.order=code``); each
``*_paper`` variant differs from its base preset in the declared keys only.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bench.job import not_applicable
from bench.study import compose_job, hydra_context, load_study

PRESETS = load_study("lama")["presets"]
PAPER = [p for p in PRESETS if p.endswith("_paper")]
# what a *_paper variant may change relative to its base preset (dotted keys)
DECLARED = {"task.protocol", "template.order", "sweep.archs"}


def _flat(tree, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out.update(_flat(value, f"{path}.") if isinstance(value, dict) else {path: value})
    return out


def _compose(preset: str, model: str) -> dict:
    with hydra_context():
        return OmegaConf.to_container(compose_job(preset, model, []), resolve=False)


@pytest.mark.parametrize("preset", [p for p in PRESETS if not p.endswith("_paper")])
def test_reproduction_presets_run_the_released_codes_protocol(preset):
    cfg = _compose(preset, "tiny-gpt2" if "bert" not in preset else "tiny-bert")
    assert cfg["task"]["protocol"] == "reference"
    if cfg["method"]["name"] == "ptuning":
        assert cfg["template"]["order"] == "code"  # the released masked-LM query: [MASK] before the subject
    with hydra_context():  # T5: the reference has no T5 query, so these presets do not apply to it
        assert not_applicable(compose_job(preset, "tiny-t5", [])) is not None


@pytest.mark.parametrize("preset", PAPER)
def test_paper_variants_change_only_the_declared_keys(preset):
    base = preset.removesuffix("_paper")
    assert base in PRESETS, "a paper variant runs beside its reproduction preset"
    for model in ("tiny-bert", "tiny-gpt2"):
        ours, theirs = _flat(_compose(preset, model)), _flat(_compose(base, model))
        changed = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
        assert changed - DECLARED == set(), changed
        assert ours["task.protocol"] == "paper" and theirs["task.protocol"] == "reference"
        if ours.get("method.name") == "ptuning":
            assert (ours["template.order"], theirs["template.order"]) == ("paper", "code")
    with hydra_context():  # T5 runs the paper's protocol only
        assert not_applicable(compose_job(preset, "tiny-t5", [])) is None


def test_the_study_runs_a_paper_variant_of_every_table2_column():
    wanted = {"lama34k_manual", "lama34k_ptuning", "lama29k_manual", "lama29k_lm_finetune",
              "lama29k_lm_finetune_manual", "lama29k_ptuning", "lama34k_majority"}
    assert {p.removesuffix("_paper") for p in PAPER} == wanted
