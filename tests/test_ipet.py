"""iPET's training sets (bench.superglue.ipet) against hand computations, and a generation-1 run end to end."""

import copy
import dataclasses
import json
import math

import pytest
import torch

from bench.errors import ConfigError
from bench.superglue.data import Example
from bench.superglue.ipet import draw, examples_per_label, ipet_train_set, new_example_count

UIDS = [f"u{i}" for i in range(6)]
UNLABELED = [Example("WiC", u, {"x": u}, None) for u in UIDS]
TRAIN = [Example("WiC", f"t{i}", {"x": "t"}, label) for i, label in enumerate([0, 0, 0, 1])]
LOGITS = {  # (rank, seed) -> per unlabeled example, two label logits
    (0, 42): [[2, 0], [2, 0], [2, 0], [2, 0], [2, 0], [2, 0]],
    (1, 42): [[3, 0], [0, 1], [1, 0], [0, 2], [2, 0], [0, 0.5]],
    (0, 43): [[0, 1], [1, 0], [0, 3], [2, 0], [0, 1], [1, 0]],
    (1, 43): [[1, 0], [0, 2], [0, 1], [0, 1], [3, 0], [0, 4]],
}
ACCURACY = {(0, 42): 0.5, (1, 42): 0.75, (0, 43): 0.25, (1, 43): 1.0}


def record(rank: int, seed: int, generation: int = 0) -> dict:
    return {"name": f"p{rank}-s{seed}", "status": "finished",
            "spec": {"method": "pet", "rank": rank, "seed": seed, "model": "tiny-albert", "tag": "t"},
            "extra": {"pet": {"train_accuracy_before": ACCURACY[(rank, seed)], "unlabeled_uids": UIDS,
                              "unlabeled_logits": LOGITS[(rank, seed)], "generation": generation}}}


def test_counts_follow_pets_formulas():
    assert [new_example_count(32, 5, g) for g in (1, 2)] == [128, 768]  # 32 x 5 - 32, 32 x 25 - 32
    assert examples_per_label(TRAIN, 2, 16) == [12, 4]  # 3 and 1 of 4, times 16 / 4
    assert examples_per_label(TRAIN, 2, 10) == [7, 2]  # int(3 x 2.5), int(1 x 2.5)


def test_every_other_run_labels_by_the_weighted_ensemble_and_the_own_run_never_does():
    """logits_percentage 1: all three other runs; wmean weights 0.75, 0.25, 1.0 (own run (0, 42) left out)."""
    records = [record(*key) for key in LOGITS]
    new, info = ipet_train_set(records, (0, 42), 1, TRAIN, UNLABELED, {"ipet_logits_percentage": 1.0})
    assert sorted(info["labelled_by"]) == ["p0-s43", "p1-s42", "p1-s43"] and info["per_label"] == [12, 4]
    others = [(1, 42), (0, 43), (1, 43)]
    weights = [ACCURACY[k] for k in others]
    by_hand = {}
    for i, uid in enumerate(UIDS):
        merged = [sum(w * LOGITS[k][i][c] for w, k in zip(weights, others, strict=True)) / sum(weights)
                  for c in (0, 1)]
        by_hand[uid] = 0 if merged[0] >= merged[1] else 1
    # u0: (0.75*3 + 0.25*0 + 1*1)/2 = 1.625 vs (0 + 0.25 + 0)/2: label 0; u1: 0.25 vs 0.75*1+2 -> label 1 ...
    assert by_hand == {"u0": 0, "u1": 1, "u2": 1, "u3": 1, "u4": 0, "u5": 1}
    assert len(new) == 16 and sum(ex.label == 0 for ex in new) == 12
    for ex in new:
        assert ex.label == by_hand[ex.uid.split("@")[0]]  # the ensemble's argmax, as PET relabels
    assert len({ex.uid for ex in new}) == 16  # repeated draws (upsampling) stay distinct examples


def test_a_quarter_of_the_other_runs_is_drawn_and_a_label_nobody_predicts_falls_back():
    """3 others x 0.25 rounds to 1 run; (0, 42) labels everything 0, so from (1, 43)'s view label 1 is
    predicted by no example when (0, 42) is the one drawn: then label 1 draws from every example."""
    records = [record(*key) for key in LOGITS]
    for own in LOGITS:
        new, info = ipet_train_set(records, own, 1, TRAIN, UNLABELED, {})
        assert len(info["labelled_by"]) == 1 and info["labelled_by"][0] != f"p{own[0]}-s{own[1]}"
        assert [sum(ex.label == c for ex in new) for c in (0, 1)] == [12, 4]
        if info["labelled_by"] == ["p0-s42"]:
            assert info["labels_predicted_by_none"] == [1]
    again, _ = ipet_train_set(records, (1, 43), 1, TRAIN, UNLABELED, {})
    first, _ = ipet_train_set(records, (1, 43), 1, TRAIN, UNLABELED, {})
    assert [e.uid for e in again] == [e.uid for e in first]  # a run's set depends only on (seed, pattern, generation)


def test_draw_is_numpys_weighted_choice_without_replacement():
    import numpy as np

    items = [(Example("WiC", f"e{i}", {}, 0), w) for i, w in enumerate([0.9, 0.6, 0.55, 0.95])]
    picked = draw(items, 3, np.random.RandomState(7))
    expected = np.random.RandomState(7).choice(4, size=3, replace=False, p=np.array([0.9, 0.6, 0.55, 0.95]) / 3.0)
    assert [ex.uid for ex in picked] == [f"e{i}" for i in expected]


def test_no_other_run_is_an_error():
    with pytest.raises(ConfigError, match="no other run of generation 0"):
        ipet_train_set([record(0, 42)], (0, 42), 1, TRAIN, UNLABELED, {})


@pytest.mark.slow
def test_generation_one_run_trains_on_the_labelled_examples_and_records_them(tiny_backbone, tmp_path):
    """Two generation-0 records (same config family) on WiC's first 4 unlabeled examples -> a generation-1
    PET run of pattern 0 trains on 4 + 16 examples and records its generation and who labelled."""
    import yaml

    from bench.identity import resolved_config
    from bench.methods.pet import PatternTuning
    from bench.paths import REPO_ROOT, data_dir
    from bench.superglue.data import load_split
    from bench.superglue.runner import run_classification

    if not (data_dir() / "fewglue/WiC/unlabeled.jsonl").is_file():
        pytest.skip("FewGLUE WiC is not prepared")
    trainer = {**yaml.safe_load((REPO_ROOT / "conf/trainer/pet.yaml").read_text()), "max_steps": 1,
               "aux_mlm_weight": 0.0, "ipet_logits_percentage": 1.0}
    trainer.pop("defaults")
    cfg = {"task": {**yaml.safe_load((REPO_ROOT / "conf/task/wic.yaml").read_text()), "limit": 4,
                    "selection_split": None, "eval_splits": ["dev32"]},
           "model": {"name": "tiny-albert"}, "method": {"name": "pet"}, "tag": "t", "seed": 42,
           "template": {**yaml.safe_load((REPO_ROOT / "conf/template/pet_wic.yaml").read_text()), "rank": 0},
           "paths": {"data_dir": str(data_dir()), "results_dir": str(tmp_path)}, "trainer": trainer}
    train = load_split("WiC", "train", "fewglue", root=data_dir(), limit=4)
    uids = [ex.uid for ex in load_split("WiC", "unlabeled", "fewglue", root=data_dir(), limit=4)]
    folder = tmp_path / "runs" / "wic"
    folder.mkdir(parents=True)
    for rank, logits in ((1, [[2, 0], [0, 2], [1, 0], [0, 1]]), (2, [[0, 1], [3, 0], [0, 2], [1, 0]])):
        config = resolved_config({**cfg, "template": {**cfg["template"], "rank": rank}})
        rec = {"name": f"g0-p{rank}", "status": "finished", "config": copy.deepcopy(config),
               "spec": {"method": "pet", "rank": rank, "seed": 42, "model": "tiny-albert", "tag": "t"},
               "extra": {"pet": {"train_accuracy_before": 0.5, "unlabeled_uids": uids, "unlabeled_logits": logits}}}
        (folder / f"g0-p{rank}.json").write_text(json.dumps(rec))
    other = copy.deepcopy(rec)  # another recipe (lr) in the same folder: not of this family, never used
    other["name"], other["config"]["trainer"]["lr"] = "g0-lr", 1.0
    other["extra"]["pet"]["unlabeled_logits"] = [[9, 0]] * 4
    (folder / "g0-lr.json").write_text(json.dumps(other))
    from bench.inputs import input_ref

    cfg["inputs"] = [input_ref(folder / f"g0-p{rank}.json", tmp_path) for rank in (1, 2)]  # what bench.inputs resolves

    base = tiny_backbone("tiny-albert")
    backbone = dataclasses.replace(base, model=copy.deepcopy(base.model))
    method = PatternTuning()
    method.setup(backbone)
    payload = run_classification({**cfg, "trainer": {**trainer, "ipet_generation": 1}}, backbone, method)
    pet = payload["extra"]["pet"]
    assert pet["generation"] == 1 and sorted(pet["ipet"]["labelled_by"]) == ["g0-p1", "g0-p2"]
    n_new = new_example_count(len(train), 5, 1)
    assert pet["ipet"]["n_new"] == n_new == 16 and payload["extra"]["fit"]["n_train"] == 4 + 16
    counts = examples_per_label(train, 2, n_new)
    assert sum(counts) <= n_new and pet["ipet"]["per_label"] == counts
    # the mean of the two runs' logits labels u0 (1, 0.5) -> 0, u1 (1.5, 1) -> 0, u2 (0.5, 1) -> 1, u3 (0.5, 0.5) -> 0:
    # both labels have candidates, so no label falls back to the whole set
    assert pet["ipet"]["labels_predicted_by_none"] == []
    assert math.isfinite(payload["extra"]["fit"]["losses"][0]) and len(pet["unlabeled_logits"]) == 4
    assert torch.tensor(pet["unlabeled_logits"]).shape == (4, 2)
