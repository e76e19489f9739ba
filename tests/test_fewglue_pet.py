"""PET's losses, truncation order and second stage, each against a hand or plain recomputation."""

import math

import pytest
import torch
from test_prompt_tokenizers import minilm

from bench.prompts import parse_template, render
from bench.superglue.losses import hinge_loss, mask_for_mlm, mixed_loss, mlm_loss
from bench.superglue.pet import distillation_loss, ensemble_logits, soft_targets

NEG = float("-inf")


def test_hinge_loss_by_hand():
    # scores are summed log-probs (-CE). ex 1: 1 + 1 - 3 < 0 -> 0; ex 2: 1 + 2 - 1.5 = 1.5; mean 0.75
    scores = torch.tensor([[-1.0, -3.0], [-2.0, -1.5]])
    assert hinge_loss(scores, torch.tensor([0, 0])).item() == pytest.approx(0.75)
    # an absent option (-inf) adds nothing; two wrong options add up: (1 + 1 - 1.2) + (1 + 1 - 1.5) = 1.3
    assert hinge_loss(torch.tensor([[-1.0, -1.2, NEG]]), torch.tensor([0])).item() == pytest.approx(0.8)
    assert hinge_loss(torch.tensor([[-1.0, -1.2, -1.5]]), torch.tensor([0])).item() == pytest.approx(1.3)


def test_mlm_masking_follows_pets_recipe():
    gen = torch.Generator().manual_seed(0)
    ids = torch.full((200, 50), 7)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = mask_for_mlm(ids, special, mask_id=3, vocab_size=10, generator=gen)
    chosen = labels != -100
    assert not chosen[special].any() and bool((labels[chosen] == 7).all())
    assert 0.13 < chosen.float().mean().item() / (48 / 50) < 0.17  # 15% of the non-special tokens
    assert bool((inputs[~chosen] == 7).all())
    masked = (inputs[chosen] == 3).float().mean().item()
    assert 0.75 < masked < 0.85  # 80% [MASK]; the rest random (half of 20%) or kept


def test_auxiliary_loss_by_hand():
    logits = torch.tensor([[[0.0, math.log(3.0), 0.0], [5.0, 0.0, 0.0]]])
    labels = torch.tensor([[1, -100]])
    lm = mlm_loss(logits, labels)  # only position 0: -log(3 / 5)
    assert lm.item() == pytest.approx(-math.log(3 / 5))
    assert mixed_loss(torch.tensor(2.0), lm, 0.9999).item() == pytest.approx(0.9999 * 2 + 1e-4 * -math.log(0.6))


def test_pet_truncation_takes_the_last_truncatable_part_first():
    tok = minilm()
    one = parse_template("{a:trunc} ? [MASK] , {b:trunc}")
    example = {"a": "one two three four five six", "b": "red green"}
    # one sequence: the last shortenable part ({b}) loses tokens first, then {a}
    p = render(one, example, tok, "mlm", max_length=11, truncation="pet")
    assert p.tokens(tok) == ["[CLS]", "one", "two", "three", "four", "five", "six", "?", "[MASK]", ",", "[SEP]"]
    p = render(one, example, tok, "mlm", max_length=9, truncation="pet")
    assert p.tokens(tok) == ["[CLS]", "one", "two", "three", "four", "?", "[MASK]", ",", "[SEP]"]
    # a pair: the text with more truncatable tokens loses one at a time (ties: the second text)
    pair = parse_template("{a:trunc} ? [SEP] [MASK] , {b:trunc}")
    full = render(pair, {"a": "one two three", "b": "red green blue white"}, tok, "mlm", truncation="pet")
    assert len(full.input_ids) == 13
    p = render(pair, {"a": "one two three", "b": "red green blue white"}, tok, "mlm", max_length=10,
               truncation="pet")  # b 4 > a 3: b -> 3; tie 3 = 3: b -> 2; a 3 > 2: a -> 2
    assert p.tokens(tok) == ["[CLS]", "one", "two", "?", "[SEP]", "[MASK]", ",", "red", "green", "[SEP]"]


def test_ensemble_soft_labels_and_distillation_equal_a_plain_recomputation():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 0.0]])
    merged = ensemble_logits([a, b], [0.25, 0.75])  # np.average(weights=[.25, .75])
    assert merged.tolist() == [[2.5, 0.5], [1.5, 1.0]]
    assert ensemble_logits([a, b], [0.25, 0.75], "mean").tolist() == [[2.0, 1.0], [2.0, 2.0]]
    q = soft_targets(merged, 2.0)
    assert q[0, 0].item() == pytest.approx(1 / (1 + math.exp(-1.0)))  # softmax([1.25, 0.25])
    student = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    plain = 0.0
    for s_row, t_row in zip(student.tolist(), merged.tolist(), strict=True):
        zs = [math.exp(v / 2) for v in s_row]
        zt = [math.exp(v / 2) for v in t_row]
        ps = [v / sum(zs) for v in zs]
        qt = [v / sum(zt) for v in zt]
        plain += sum(qi * math.log(qi / pi) for qi, pi in zip(qt, ps, strict=True))
    assert distillation_loss(student, merged.float(), 2.0).item() == pytest.approx(plain * 4 / 2, rel=1e-6)


@pytest.mark.slow
def test_pet_two_patterns_two_repetitions_soft_labels_equal_a_plain_recomputation(tiny_backbone):
    """4 PET pattern runs (WiC, tiny-albert, 1 step): their train accuracy before training, their
    unlabeled logits and the ensemble's soft labels, each recomputed with plain forward passes."""
    import copy
    import dataclasses

    import yaml

    from bench.methods.pet import PatternTuning
    from bench.paths import REPO_ROOT, data_dir
    from bench.prompts import templates_for, verbalizer_for
    from bench.superglue.data import LABELS, load_split
    from bench.superglue.pet_stage import ensemble_from_records
    from bench.superglue.runner import run_classification

    if not (data_dir() / "fewglue/WiC/unlabeled.jsonl").is_file():
        pytest.skip("FewGLUE WiC is not prepared")
    template_cfg = yaml.safe_load((REPO_ROOT / "conf/template/pet_wic.yaml").read_text())
    task_cfg = {**yaml.safe_load((REPO_ROOT / "conf/task/wic.yaml").read_text()), "limit": 4,
                "selection_split": None, "eval_splits": ["val"]}
    trainer = {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.01, "no_decay": ["bias", "LayerNorm.weight"],
               "schedule": "linear", "batch_size": 4, "max_steps": 1, "max_epochs": 1, "selection_rule": "last",
               "early_stopping_patience": None, "grad_clip": 1.0, "pet_unlabeled_logits": True,
               "aux_mlm_weight": 1e-4, "unlabeled_batch_size": 2}
    base = tiny_backbone("tiny-albert")
    tok = base.tokenizer

    def plain_logits(model, template, words, examples):
        ids = [[tok.convert_tokens_to_ids(w) for w in words[label]] for label in LABELS["WiC"]]
        out = []
        for ex in examples:
            r = render(template, ex.fields, tok, "mlm", max_length=256, truncation="pet")
            types = None if r.token_type_ids is None else torch.tensor([r.token_type_ids])
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([r.input_ids]), token_type_ids=types).logits[0]
            at = logits[r.target_positions[0]]
            out.append([sum(at[i].item() for i in row) / len(row) for row in ids])
        return out

    unlabeled = load_split("WiC", "unlabeled", "fewglue", root=data_dir(), limit=4)
    train = load_split("WiC", "train", "fewglue", root=data_dir(), limit=4)
    records = []
    for rank in (0, 1):
        t_cfg = {**template_cfg, "rank": rank}
        template = templates_for(t_cfg, family="mlm")[0]
        words = {k: [tok.tokenize(" " + w)[-1] if len(tok.tokenize(" " + w)) == 1 else w for w in v]
                 for k, v in verbalizer_for(t_cfg).label_words.items()}
        for seed in (1, 2):
            backbone = dataclasses.replace(base, model=copy.deepcopy(base.model))
            before = plain_logits(backbone.model, template, words, train)
            acc_before = sum(int(max(range(2), key=row.__getitem__) == ex.label)
                             for row, ex in zip(before, train, strict=True)) / len(train)
            cfg = {"task": task_cfg, "template": t_cfg, "seed": seed, "trainer": trainer,
                   "paths": {"data_dir": str(data_dir())}}
            method = PatternTuning()
            method.setup(backbone)
            payload = run_classification(cfg, backbone, method)
            pet = payload["extra"]["pet"]
            assert pet["train_accuracy_before"] == pytest.approx(acc_before)
            plain = plain_logits(backbone.model, template, words, unlabeled)
            assert payload["extra"]["fit"]["steps"] == 1 and payload["extra"]["fit"]["aux_mlm"].startswith("on")
            assert sum(pet["unlabeled_logits"], []) == pytest.approx(sum(plain, []), abs=1e-4)
            records.append({"name": f"r{rank}s{seed}", "extra": payload["extra"]})
    merged = ensemble_from_records(records)
    weights = [r["extra"]["pet"]["train_accuracy_before"] for r in records]
    for i in range(len(unlabeled)):
        for j in range(2):
            expected = sum(w * r["extra"]["pet"]["unlabeled_logits"][i][j] for w, r in zip(weights, records,
                                                                                           strict=True)) / sum(weights)
            assert merged["logits"][i, j].item() == pytest.approx(expected)
        row = merged["logits"][i].tolist()
        z = [math.exp(v / 2) for v in row]
        assert merged["soft_labels"][i].tolist() == pytest.approx([v / sum(z) for v in z])


def test_multirc_question_grouping_survives_batching(tiny_backbone):
    """Answer options batched 3 at a time or all at once: the same predictions, and EM regroups them
    by question exactly as a plain per-question recomputation does."""
    import yaml

    from bench.methods.pet import PatternTuning
    from bench.paths import REPO_ROOT, data_dir
    from bench.superglue.task import ClassificationTask

    if not (data_dir() / "superglue/MultiRC/val.jsonl").is_file():
        pytest.skip("MultiRC val is not prepared")
    backbone = tiny_backbone("tiny-albert")
    method = PatternTuning()
    method.setup(backbone)
    task_cfg = {**yaml.safe_load((REPO_ROOT / "conf/task/multirc.yaml").read_text()), "limit": 1}
    cfg = {"task": task_cfg, "template": yaml.safe_load((REPO_ROOT / "conf/template/pet_multirc.yaml").read_text()),
           "seed": 0, "paths": {"data_dir": str(data_dir())}}
    small = ClassificationTask({**cfg, "task": {**task_cfg, "batch_size": 3}}, backbone, method)
    whole = ClassificationTask({**cfg, "task": {**task_cfg, "batch_size": 512}}, backbone, method)
    preds = small.predict("val", method.scorer())
    assert preds == whole.predict("val", method.scorer())
    examples = small.examples("val")
    assert len({ex.group for ex in examples}) > 1 and len(examples) > 3
    by_question: dict = {}
    for ex, p in zip(examples, preds, strict=True):
        by_question.setdefault(ex.group, []).append(p == ex.label)
    em = sum(all(v) for v in by_question.values()) / len(by_question)
    metrics = small.evaluate("val", method.scorer())[0]["overall"]
    assert metrics["em"] == pytest.approx(em) and metrics["n_questions"] == len(by_question)


@pytest.mark.slow
def test_distilled_classifier_trains_on_the_ensembles_soft_labels(tiny_backbone, tmp_path):
    """Two hand-made pattern records -> the classifier's targets are their weighted mean, and one
    training step's loss is PET's KL (T = 2) recomputed plainly from the classifier's outputs."""
    import copy
    import dataclasses
    import json

    import yaml

    from bench.methods.finetune import FineTune
    from bench.paths import REPO_ROOT, data_dir
    from bench.superglue.distill import DistillTask, run_distillation
    from bench.superglue.pet_stage import ensemble_from_records, pattern_records
    from bench.superglue.task import ClassificationTask

    if not (data_dir() / "fewglue/WiC/unlabeled.jsonl").is_file():
        pytest.skip("FewGLUE WiC is not prepared")
    task_cfg = {**yaml.safe_load((REPO_ROOT / "conf/task/wic.yaml").read_text()), "limit": 4,
                "selection_split": None, "eval_splits": ["val"]}
    cfg = {"task": task_cfg, "model": {"name": "tiny-albert"}, "tag": "t", "seed": 1,
           "template": yaml.safe_load((REPO_ROOT / "conf/template/pet_wic.yaml").read_text()),
           "paths": {"data_dir": str(data_dir()), "results_dir": str(tmp_path)},
           "trainer": {"optimizer": "adamw", "lr": 1e-5, "weight_decay": 0.01, "schedule": "linear", "batch_size": 4,
                       "max_steps": 1, "max_epochs": 1, "selection_rule": "last", "early_stopping_patience": None,
                       "grad_clip": 1.0, "distill_temperature": 2.0, "distill_reduction": "wmean"}}
    from bench.superglue.data import load_split

    uids = [ex.uid for ex in load_split("WiC", "unlabeled", "fewglue", root=data_dir(), limit=4)]
    logits = {"a": [[1.0, 0.0], [0.0, 2.0], [0.5, 0.5], [3.0, 1.0]], "b": [[0.0, 1.0], [2.0, 0.0], [1.5, 0.5], [1.0, 1.0]]}
    weights = {"a": 0.75, "b": 0.25}
    for name in ("a", "b"):
        rec = {"name": name, "status": "finished", "spec": {"method": "pet", "model": "tiny-albert", "tag": "t"},
               "extra": {"pet": {"train_accuracy_before": weights[name], "unlabeled_uids": uids,
                                 "unlabeled_logits": logits[name]}}}
        (tmp_path / "runs" / "wic").mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / "wic" / f"{name}.json").write_text(json.dumps(rec))
    from bench.inputs import input_ref

    cfg["inputs"] = [input_ref(tmp_path / "runs" / "wic" / f"{name}.json", tmp_path) for name in ("a", "b")]
    merged = ensemble_from_records(pattern_records(cfg, 0))
    expected = [[0.75 * x + 0.25 * y for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(logits["a"], logits["b"],
                                                                                              strict=True)]
    assert sum(merged["logits"].tolist(), []) == pytest.approx(sum(expected, []))

    base = tiny_backbone("tiny-albert")
    backbone = dataclasses.replace(base, model=copy.deepcopy(base.model))
    method = FineTune()
    method.setup(backbone)
    task = ClassificationTask(cfg, backbone, method)
    method.set_num_labels(task.n_out)
    dtask = DistillTask(task, merged["logits"].float(), 2.0)
    batch = next(dtask.train_batches(4, torch.Generator().manual_seed(0)))
    method.eval_mode()
    with torch.no_grad():
        student = task.option_scores(method.scorer()(batch), batch).tolist()
        loss = dtask.loss(method.scorer()(batch), batch).item()
    plain = 0.0
    for s_row, t_row in zip(student, batch.teacher.tolist(), strict=True):
        zs, zt = [math.exp(v / 2) for v in s_row], [math.exp(v / 2) for v in t_row]
        plain += sum((b / sum(zt)) * math.log((b / sum(zt)) / (a / sum(zs))) for a, b in zip(zs, zt, strict=True))
    assert loss == pytest.approx(plain * 4 / len(student), rel=1e-5)
    payload = run_distillation(cfg, backbone, method)
    assert payload["extra"]["distillation"]["pattern_runs"] == ["a", "b"] and payload["extra"]["fit"]["steps"] == 1
    assert "distilled from 2 PET pattern runs" in payload["protocol"]["selection_rule"]


def test_batch_hinge_is_pets_copa_loss_by_hand():
    """Two examples; correct choices' summed log-probs -2 (1 token) and -6 (2 tokens): CE+ = 8 / 3; wrong
    ones -3 (1 token), -3 (1 token): CE- = 3; 1 + 8/3 - 3 = 2/3. A large margin in favour: clipped at 0."""
    from bench.superglue.losses import batch_hinge_loss

    unit = torch.tensor([-2.0, -3.0, -3.0, -6.0])  # ex 0: choice 0 (gold), 1; ex 1: choice 0, 1 (gold)
    tokens = torch.tensor([1.0, 1.0, 1.0, 2.0])
    correct = torch.tensor([True, False, False, True])
    assert batch_hinge_loss(unit, tokens, correct).item() == pytest.approx(2 / 3)
    assert batch_hinge_loss(torch.tensor([-0.1, -9.0]), torch.tensor([1.0, 1.0]), torch.tensor([True, False])).item() == 0.0


@pytest.mark.slow
def test_copa_training_input_has_the_longer_choices_masks_and_pets_loss(tiny_backbone):
    """train_choice_masks=longest: both choices share one input with max(len) masks, each targets its first
    masks; inference keeps one input per choice with its own masks. The batch loss equals PET's
    recomputed from a plain forward pass: CrossEntropyLoss over each choice's target tokens."""
    import yaml

    from bench.methods.pet import PatternTuning
    from bench.paths import REPO_ROOT, data_dir
    from bench.superglue.task import ClassificationTask

    if not (data_dir() / "fewglue/COPA/train.jsonl").is_file():
        pytest.skip("FewGLUE COPA is not prepared")
    backbone = tiny_backbone("tiny-albert")
    method = PatternTuning()
    method.setup(backbone)
    task_cfg = {**yaml.safe_load((REPO_ROOT / "conf/task/copa.yaml").read_text()), "limit": 8,
                "train_choice_masks": "longest", "choice_loss": "hinge_batch", "mirror_copa": False}
    cfg = {"task": task_cfg, "template": {**yaml.safe_load((REPO_ROOT / "conf/template/pet_copa.yaml").read_text()),
                                          "rank": 0}, "seed": 0, "paths": {"data_dir": str(data_dir())}}
    task = ClassificationTask(cfg, backbone, method)
    items = task.items("train", train=True)
    uneven = [it for it in items if len({len(e.token_ids) for e in it.entries}) > 1]
    assert uneven, "the first 8 COPA examples should include choices of different token lengths"
    for it in items:
        a, b = it.entries
        assert a.input_ids == b.input_ids  # one input per example
        masks = [i for i, t in enumerate(a.input_ids) if t == backbone.tokenizer.mask_token_id]
        assert len(masks) == max(len(a.token_ids), len(b.token_ids))
        assert a.target_positions == masks[: len(a.token_ids)] and b.target_positions == masks[: len(b.token_ids)]
    for it in task.items("val"):  # inference: each choice with its own number of masks
        for e in it.entries:
            assert sum(t == backbone.tokenizer.mask_token_id for t in e.input_ids) == len(e.token_ids)
    batch = task.collate(items)
    method.eval_mode()
    with torch.no_grad():
        loss = task.loss(method.scorer()(batch), batch).item()
        ce = {True: [], False: []}
        for it in items:
            logits = backbone.model(input_ids=torch.tensor([it.entries[0].input_ids])).logits[0]
            for j, e in enumerate(it.entries):
                for pos, tok in zip(e.target_positions, e.token_ids, strict=True):
                    ce[j == it.example.label].append(-torch.log_softmax(logits[pos], -1)[tok].item())
    plain = max(0.0, 1 + sum(ce[True]) / len(ce[True]) - sum(ce[False]) / len(ce[False]))
    assert plain > 0 and loss == pytest.approx(plain, rel=1e-4, abs=1e-6)
