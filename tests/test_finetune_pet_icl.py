"""finetune / pet / icl on every tiny family: what one step changes, overfitting 4 examples, parameter counts."""

import copy
import dataclasses
import json

import pytest
import torch
import yaml

from bench.errors import ConfigError
from bench.methods.finetune import FineTune
from bench.methods.icl import InContext, demonstration_text
from bench.methods.pet import PatternTuning
from bench.paths import REPO_ROOT, data_dir, mirror_dir
from bench.prompts import parse_template
from bench.superglue.task import ClassificationTask
from bench.train import build_optimizer

FAMILIES = ["tiny-bert", "tiny-roberta", "tiny-albert", "tiny-gpt2", "tiny-t5"]
METHODS = {"finetune": FineTune, "pet": PatternTuning, "icl": lambda: InContext(k=2)}


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


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return rte_tree(tmp_path_factory.mktemp("data"))


def conf(group: str, name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "conf" / group / f"{name}.yaml").read_text())


def config(data, family: str, limit: int = 8) -> dict:
    task = {**conf("task", "rte"), "limit": limit}
    template = conf("template", "gpt3_rte" if family == "clm" else "pet_rte")
    trainer = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 4}
    return {"task": task, "template": template, "trainer": trainer, "seed": 3, "paths": {"data_dir": str(data)}}


def attach(tiny_backbone, name: str, method_name: str, data, limit: int = 8):
    backbone = tiny_backbone(name)
    backbone = dataclasses.replace(backbone, model=copy.deepcopy(backbone.model))
    method = METHODS[method_name]()
    method.setup(backbone)
    task = ClassificationTask(config(data, backbone.family, limit), backbone, method)
    if method_name == "finetune":
        method.set_num_labels(task.n_out)
    return backbone, method, task


def named_parameters(backbone, method) -> dict:
    params = {f"model.{n}": p for n, p in backbone.model.named_parameters()}
    params.update({f"{m}.{n}": p for m, mod in method.own_modules().items() for n, p in mod.named_parameters()})
    return params


def hand_count(name: str, model, method_name: str) -> int:
    """Trainable parameters by formula from the config sizes."""
    c = model.config
    total = sum(p.numel() for p in model.parameters())
    if method_name == "icl":
        return 0
    if method_name == "pet":
        return total  # every weight, the LM head included (tied weights counted once)
    h, v = c.hidden_size, c.vocab_size
    # the LM head's own weights (frozen): dense + LayerNorm + output bias; its decoder is tied to the embeddings
    if name in ("tiny-bert", "tiny-roberta"):
        lm_head_only = h * h + h + 2 * h + v
    elif name == "tiny-albert":
        lm_head_only = h * c.embedding_size + c.embedding_size + 2 * c.embedding_size + v
    else:
        lm_head_only = 0  # GPT-2 and T5: the LM head is the tied embedding matrix
    head = h * h + h + h * 2 + 2  # dense + tanh, then 2 RTE labels
    return total - lm_head_only + head


@pytest.mark.parametrize("method_name", list(METHODS))
@pytest.mark.parametrize("name", FAMILIES)
def test_one_step_changes_only_declared_parameters(tiny_backbone, data, name, method_name):
    backbone, method, task = attach(tiny_backbone, name, method_name, data)
    declared = {id(p) for p in method.trainable_parameters()}
    assert sum(p.numel() for p in method.trainable_parameters()) == hand_count(name, backbone.model, method_name)
    params = named_parameters(backbone, method)
    before = {n: p.detach().clone() for n, p in params.items()}
    if method.trains:
        optimizer = build_optimizer(method, config(data, backbone.family)["trainer"])
        method.train_mode()
        batch = next(iter(task.train_batches(4, torch.Generator().manual_seed(0))))
        loss = task.loss(method.scorer()(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    else:
        with pytest.raises(ValueError, match="no trainable parameters"):
            build_optimizer(method, config(data, backbone.family)["trainer"])
    method.eval_mode()
    metrics, value = task.evaluate("dev32", method.scorer())
    assert metrics["overall"]["n"] == 8 and value == metrics["overall"]["accuracy"]
    assert sum(g["n"] for g in metrics["groups"].values()) == 8

    changed = {n for n, p in params.items() if not torch.equal(p.detach(), before[n])}
    assert all(id(params[n]) in declared for n in changed), sorted(n for n in changed if id(params[n]) not in declared)
    if method_name == "icl":
        assert not changed and not declared
    else:
        assert any(n.startswith("model.") for n in changed)
        if method_name == "finetune":
            assert any(n.startswith("head.") for n in changed)


@pytest.mark.slow
@pytest.mark.parametrize("method_name", ["finetune", "pet"])
@pytest.mark.parametrize("name", FAMILIES)
def test_loss_goes_down_when_overfitting_four_examples(tiny_backbone, data, name, method_name):
    torch.manual_seed(0)
    backbone, method, task = attach(tiny_backbone, name, method_name, data, limit=4)
    optimizer = build_optimizer(method, {**config(data, backbone.family)["trainer"], "lr": 3e-3})
    method.train_mode()
    for module in [backbone.model, *method.own_modules().values()]:
        module.eval()  # no dropout: the same four examples, a deterministic objective
    batch = task.collate(task.items("train", train=True))
    assert batch.n_examples == 4
    scorer, losses = method.scorer(), []
    for _ in range(10):
        loss = task.loss(scorer(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # the first four RTE train rows are labelled 1, 1, 1, 0: predicting the label prior costs
    # -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.5623 nats; fitting the examples must beat it
    assert [it.example.label for it in task.items("train", train=True)] == [1, 1, 1, 0]
    assert losses[-1] < 0.5 * losses[0] and losses[-1] < 0.5623, losses


def test_icl_demonstrations_follow_the_seed_and_sit_before_or_after_the_query():
    pool = [type("Ex", (), {"uid": f"train-{i}"})() for i in range(10)]
    method = InContext(k=3)
    first = [ex.uid for ex in method.sample(pool, "val-5", seed=1)]
    assert first == [ex.uid for ex in method.sample(pool, "val-5", seed=1)] and len(set(first)) == 3
    assert first != [ex.uid for ex in method.sample(pool, "val-5", seed=2)]
    assert "train-4" not in [ex.uid for ex in InContext(k=9).sample(pool, "train-4", seed=0)]
    template = parse_template("{premise} question: {hypothesis} True or False? answer: [MASK]")
    demo = demonstration_text(template, {"premise": "A.", "hypothesis": "B."}, "True")
    assert demo == "A. question: B. True or False? answer: True"
    before, fields = InContext(k=1, separator=" || ").with_demonstrations(template, {"premise": "Q."}, [demo], "clm")
    assert before.text.startswith("{_demonstrations} || {premise}") and fields["_demonstrations"] == demo
    after, _ = InContext(k=1, separator=" || ").with_demonstrations(template, {}, [demo], "mlm")
    assert after.text.endswith("[MASK] || {_demonstrations}")


def test_icl_with_a_generative_wsc_template_is_a_config_error(tiny_backbone, tmp_path):
    folder = tmp_path / "fewglue" / "WSC"
    folder.mkdir(parents=True)
    row = {"text": "Tom left because he was ill.", "idx": 0, "label": True,
           "target": {"span1_index": 0, "span1_text": "Tom", "span2_index": 3, "span2_text": "he"}}
    for split in ("train", "dev32"):
        (folder / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    cfg = {"task": {**conf("task", "wsc"), "eval_splits": ["dev32"]}, "template": conf("template", "pet_wsc"),
           "seed": 0, "paths": {"data_dir": str(tmp_path)}}
    method = InContext(k=1)
    method.setup(tiny_backbone("tiny-bert"))
    with pytest.raises(ConfigError, match="generative"):
        ClassificationTask(cfg, tiny_backbone("tiny-bert"), method)


def test_left_to_right_model_rejects_fields_after_the_mask(tiny_backbone, data):
    backbone = tiny_backbone("tiny-gpt2")
    cfg = {**config(data, "clm"), "template": conf("template", "pet_rte")}
    with pytest.raises(ConfigError, match="never reads them"):
        ClassificationTask(cfg, backbone, PatternTuning())

