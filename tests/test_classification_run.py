"""The classification runner: score reductions by hand, selection rules, and one end-to-end PET run."""

import copy
import dataclasses
import json
import math

import pytest
import torch
import yaml

from bench.errors import ConfigError
from bench.paths import REPO_ROOT, data_dir, mirror_dir
from bench.superglue.batching import scatter_options, unit_log_probs, word_scores
from bench.superglue.runner import run_classification
from bench.superglue.task import LAST


def test_word_scores_average_each_labels_words_like_pet_m2c():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [5.0, 0.0, -1.0, 1.0, 0.0]])
    table = torch.tensor([[1, 3], [4, -1]])  # label 0: words 1 and 3; label 1: word 4 only
    assert word_scores(logits, table).tolist() == [[2.0, 4.0], [0.5, 0.0]]


def test_unit_log_probs_sum_over_each_candidates_slots_and_pad_missing_options():
    logits = torch.zeros(3, 4)  # uniform: log p = -ln 4 per slot
    logits[0, 2] = math.log(3.0)  # slot 0: p(token 2) = 3/6
    unit = unit_log_probs(logits, torch.tensor([2, 1, 0]), torch.tensor([0, 0, 1]), 2)
    assert unit.tolist() == pytest.approx([math.log(3 / 6) + math.log(1 / 4), -math.log(4)])  # unit 0: 1/2 * 1/4
    out = scatter_options(unit, torch.tensor([0, 1]), torch.tensor([0, 1]), 2, 2)
    assert out[0, 0] == unit[0] and out[1, 1] == unit[1]
    assert out[0, 1] == float("-inf") and out[1, 0] == float("-inf")


def rte_tree(out, n: int = 8):
    """data/{fewglue,superglue}/RTE with the first n rows of each split (prepared data, else the mirror)."""
    prepared, mirror = data_dir(), mirror_dir()
    sources = {"train": prepared / "fewglue/RTE/train.jsonl", "dev32": prepared / "fewglue/RTE/dev32.jsonl",
               "val": prepared / "superglue/RTE/val.jsonl"}
    if not all(p.is_file() for p in sources.values()):
        if mirror is None:
            pytest.skip("no prepared data and no FewGLUE mirror")
        sources = {s: mirror / f"fewglue/FewGLUE_32dev/RTE/{s}.jsonl" for s in sources}
    for split, src in sources.items():
        dst = out / ("superglue" if split == "val" else "fewglue") / "RTE" / f"{split}.jsonl"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("".join(src.read_text().splitlines(keepends=True)[:n]))
    return out


def conf(group: str, name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "conf" / group / f"{name}.yaml").read_text())


def test_selection_on_the_report_split_is_refused(tiny_backbone, tmp_path):
    from bench.methods.pet import PatternTuning

    cfg = {"task": {**conf("task", "rte"), "selection_split": "val"}, "template": conf("template", "pet_rte"),
           "seed": 0, "paths": {"data_dir": str(rte_tree(tmp_path))}, "trainer": {"lr": 1e-5}}
    with pytest.raises(ConfigError, match="chosen on itself"):
        run_classification(cfg, tiny_backbone("tiny-bert"), PatternTuning())


def test_no_selection_split_keeps_the_last_state(tiny_backbone, tmp_path):
    from bench.methods.pet import PatternTuning
    from bench.superglue.task import ClassificationTask

    cfg = {"task": {**conf("task", "rte"), "selection_split": None, "report_split": "dev32"},
           "template": conf("template", "pet_rte"), "seed": 0, "paths": {"data_dir": str(rte_tree(tmp_path))}}
    task = ClassificationTask(cfg, tiny_backbone("tiny-bert"), PatternTuning())
    assert task.eval_splits == ["dev32"]
    assert [task.evaluate(LAST, None)[1] for _ in range(3)] == [1.0, 2.0, 3.0]  # each evaluation "improves"


def test_evaluation_shows_a_bar_with_its_total(tiny_backbone, tmp_path, monkeypatch):
    """Issue 27: evaluation progress has a total (hence an ETA): ceil(8 examples / batch 3) = 3 batches."""
    import bench.progress
    from bench.methods.pet import PatternTuning
    from bench.superglue.task import ClassificationTask

    bars = []

    def bar(iterable, total=None, desc=None, **kwargs):
        bars.append((total, desc))
        return iterable

    monkeypatch.setattr(bench.progress, "tqdm", bar)
    cfg = {"task": {**conf("task", "rte"), "selection_split": None, "report_split": "dev32", "batch_size": 3},
           "template": conf("template", "pet_rte"), "seed": 0, "paths": {"data_dir": str(rte_tree(tmp_path))}}
    method = PatternTuning()
    backbone = tiny_backbone("tiny-bert")
    method.setup(backbone)
    task = ClassificationTask(cfg, backbone, method)
    assert len(task.predict("dev32", method.scorer())) == 8
    assert bars == [(3, "RTE dev32")]


@pytest.mark.slow
def test_pet_rte_end_to_end_record_then_recompute_val_accuracy(tiny_backbone, tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    import bench.backbones.loading as loading
    from bench.prompts import render, templates_for, verbalizer_for
    from bench.run import execute
    from bench.superglue.data import load_split

    backbone = tiny_backbone("tiny-bert")
    backbone = dataclasses.replace(backbone, model=copy.deepcopy(backbone.model))
    data = rte_tree(tmp_path / "data")
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(loading, "load_backbone", lambda *a, **k: backbone)
    overrides = ["task=rte", "model=tiny-bert", "method=pet", "template=pet_rte", "device=cpu", "dtype=fp32",
                 "trainer.max_epochs=2", "trainer.batch_size=4", "trainer.lr=1e-4", "trainer.schedule=constant",
                 "paths.root=" + str(tmp_path), "tag=e2e"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    record = json.loads(execute(cfg).read_text())

    from bench.identity import config_hash

    assert record["name"] == f"rte-fewglue__tiny-bert__pet__pet_rte-r0__seed34__e2e__{config_hash(record['config'])}"
    assert record["protocol"]["selection_split"] == "dev32" and record["protocol"]["seeds"] == [34]
    assert (record["selection_split"], record["report_split"]) == ("dev32", "val")
    assert sorted(record["metrics"]) == ["dev32", "val"]
    assert record["params"]["trainable"] == sum(p.numel() for p in backbone.model.parameters())
    fit = record["extra"]["fit"]
    assert (fit["n_train"], fit["steps"], fit["epochs"]) == (8, 4, 2) and fit["best_step"] in (2, 4)
    assert fit["best_value"] == pytest.approx(record["metrics"]["dev32"]["overall"]["accuracy"])
    val = record["metrics"]["val"]["overall"]
    assert val["n"] == 8 and record["extra"]["mode"] == "words"

    # independent recomputation on the restored (selected) weights: full forward pass per example
    template_cfg = conf("template", "pet_rte")
    template = templates_for(template_cfg, family="mlm")[0]
    words = verbalizer_for(template_cfg).label_words
    tok = backbone.tokenizer
    ids = [tok.convert_tokens_to_ids(words[label][0]) for label in ("entailment", "not_entailment")]
    hits = 0
    for ex in load_split("RTE", "val", "fewglue", root=data):
        rendered = render(template, ex.fields, tok, "mlm", max_length=256)
        with torch.no_grad():
            types = None if rendered.token_type_ids is None else torch.tensor([rendered.token_type_ids])
            logits = backbone.model(input_ids=torch.tensor([rendered.input_ids]), token_type_ids=types).logits[0]
        mask_logits = logits[rendered.target_positions[0], ids]
        hits += int(int(mask_logits.argmax()) == ex.label)
    assert val["accuracy"] == pytest.approx(hits / 8)
