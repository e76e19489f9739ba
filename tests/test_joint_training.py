"""Joint training (bench.joint) equals separate runs: per member the same selected epoch, the same
selection history and losses, and parameters equal to 1e-5 relative (fp32, CPU, tiny models).

The separate runs are plain :func:`bench.train.fit` calls, one after another, each from
``torch.manual_seed(seed)`` before its method is set up (as the LAMA runner does per relation);
the joint run sets every member up the same way and keeps each member's RNG state from there.
"""

import pytest
import torch

from bench.errors import ConfigError
from bench.joint import Member, fit_jointly, joint_batch, why_not_joinable
from bench.lama.data import Fact
from bench.lama.evaluation import build_candidates, render_facts
from bench.lama.training import LamaRelationTask, pad_id_of
from bench.methods.prompt_tuning import PromptTuning
from bench.methods.ptuning import PTuning
from bench.prompts import parse_template
from bench.train import fit

WORDS = ["France", "Germany", "Italy", "Spain", "England", "Paris", "Berlin", "Rome", "Madrid", "London"]
# three "relations" with different facts, templates (so different widths: per-step padding) and sizes
RELATIONS = {
    "capital": ([("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
                 ("England", "London")], "[P:2] [X] [P:2] [Y] [P:1]"),
    "country": ([("Paris", "France"), ("Berlin", "Germany"), ("Rome", "Italy"), ("Madrid", "Spain")],
                "[P:1] [X] is in the middle of [P:3] [Y] ."),
    "same": ([("France", "France"), ("Rome", "Rome"), ("London", "London"), ("Berlin", "Berlin"),
              ("Spain", "Spain"), ("Madrid", "Madrid"), ("Italy", "Italy")], "[X] [P:2] [Y]"),
    "capital_lr": ([("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome")],
                   "[P:1] the capital of [X] is [P:2] [Y]"),  # nothing after [Y]: left-to-right models
}
TRAINER = {"lr": 3e-3, "optimizer": "adam", "batch_size": 2, "max_epochs": 3, "schedule": "exponential",
           "gamma": 0.9, "early_stopping_patience": 2, "drop_last": False}


class LossSelectedRelation(LamaRelationTask):
    """A LAMA relation selected by minus its dev loss: a continuous selection value, so that members pick
    different epochs (P@1 of a random-weight tiny model is 0 at every epoch and would select nothing)."""

    def evaluate(self, split, scorer):
        batch = self.train_batches(len(self.items[split]), torch.Generator().manual_seed(0))[0]
        with torch.no_grad():
            value = float(self.loss(scorer(batch), batch))
        return {"loss": value}, -value


def lama_member(backbone, relation: str, seed: int, method_cls=PTuning, **method_kw):
    """Set up as bench.lama.runner does per relation: seed, setup, adapt the template, render."""
    torch.manual_seed(seed)
    method = method_cls(**method_kw)
    method.setup(backbone)
    pairs, text = RELATIONS[relation]
    template = method.adapt_template(parse_template(text))
    candidates = build_candidates(WORDS, backbone.tokenizer, backbone.family)
    facts = [Fact(relation, s, o) for s, o in pairs]
    items = render_facts(facts, template, backbone.tokenizer, backbone.family, candidates)
    task = LossSelectedRelation(relation, {"train": items, "dev": items[:2]}, candidates,
                                pad_id_of(backbone.tokenizer))
    return method, task


def params_of(method) -> list[torch.Tensor]:
    return [p.detach().clone() for p in method.trainable_parameters()]


def rel_norm(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


def assert_same(separate, joint, sep_params, joint_params):
    """Per member: selection, steps, history and losses equal; every parameter tensor to 1e-5 relative (norm)."""
    for res_s, res_j, ps, pj in zip(separate, joint, sep_params, joint_params, strict=True):
        assert (res_j.best_epoch, res_j.best_step, res_j.steps, res_j.epochs) == \
            (res_s.best_epoch, res_s.best_step, res_s.steps, res_s.epochs)
        assert [h["kept"] for h in res_j.history] == [h["kept"] for h in res_s.history]
        assert [h["step"] for h in res_j.history] == [h["step"] for h in res_s.history]
        values = [h["value"] for h in res_s.history]
        assert [h["value"] for h in res_j.history] == pytest.approx(values, rel=1e-5)
        assert res_j.losses == pytest.approx(res_s.losses, rel=1e-5)
        for a, b in zip(ps, pj, strict=True):
            assert rel_norm(a, b) <= 1e-5, rel_norm(a, b)


def run_both(make, specs, trainer_for, selection="dev"):
    """``make(spec) -> (method, task, seed)`` sets a member up; separate fits one after another, then joint."""
    separate, sep_params, start_params = [], [], []
    for i, spec in enumerate(specs):
        method, task, seed = make(spec)
        start_params.append(params_of(method))
        separate.append(fit(method, task, trainer_for(i), selection, seed=seed))
        sep_params.append(params_of(method))
    members = []
    for i, spec in enumerate(specs):
        method, task, seed = make(spec)
        members.append(Member(method, task, trainer_for(i), selection, seed=seed, rng_state=torch.get_rng_state()))
    joint = fit_jointly(members, progress=False)
    return separate, joint, sep_params, [params_of(m.method) for m in members], start_params


def lama_maker(backbone, **method_kw):
    def make(spec):
        relation, seed = spec
        return (*lama_member(backbone, relation, seed, **method_kw), seed)
    return make


@pytest.mark.slow
def test_ptuning_lama_relations_jointly_equal_separate_runs_with_backbone_dropout(tiny_backbone):
    """P-Tuning's LAMA setting: LSTM encoder, frozen tiny-bert in train mode (dropout 0.1 live), three
    relations of different widths, batch 2 with a partial last batch, patience 1 (members stop at
    different steps and leave the batch), exponential decay per epoch."""
    backbone = tiny_backbone("tiny-bert")
    specs = [("capital", 3), ("country", 4), ("same", 5)]
    trainer = {**TRAINER, "early_stopping_patience": 1}
    separate, joint, sep_p, joint_p, start = run_both(lama_maker(backbone, encoder="lstm", backbone_dropout=True),
                                                      specs, lambda i: trainer)
    assert_same(separate, joint, sep_p, joint_p)
    assert len({r.steps for r in separate}) > 1  # the members really ran different numbers of steps
    assert all(rel_norm(s[0], e[0]) > 1e-4 for s, e in zip(start, sep_p, strict=True))  # and trained


@pytest.mark.slow
@pytest.mark.parametrize("slack", [None, 0.1])
def test_ptuning_lstm_encoders_of_one_shape_run_stacked_and_equal_separate_runs(tiny_backbone, monkeypatch, slack):
    """Two members of one prompt shape (their LSTM encoders run as one stacked computation,
    bench.methods.batched_encoders) beside one of another shape (alone), the three members' Adam steps as
    one foreach update per round (bench.joint_optim), all rows in one forward pass (slack None, as on CUDA)
    or in passes of similar widths (CPU's default): still equal to separate runs."""
    import bench.joint
    import bench.methods.batched_encoders as batched
    from bench.joint_optim import FusedAdam

    monkeypatch.setattr(bench.joint, "PAD_SLACK", {} if slack is None else {"cpu": slack})

    calls, updates = [], []
    original, update = batched.stacked_forward, FusedAdam.step
    monkeypatch.setattr(batched, "stacked_forward", lambda encoders: calls.append(len(encoders)) or original(encoders))
    monkeypatch.setattr(FusedAdam, "step", lambda self, opts: updates.append(len(opts)) or update(self, opts))
    backbone = tiny_backbone("tiny-bert")
    specs = [("capital", 3), ("same", 5), ("capital", 4)]
    trainer = {**TRAINER, "max_epochs": 2, "lr": 1e-3}
    separate, joint, sep_p, joint_p, _ = run_both(lama_maker(backbone, encoder="lstm", backbone_dropout=True),
                                                  specs, lambda i: trainer)
    assert_same(separate, joint, sep_p, joint_p)
    assert calls and set(calls) == {2}  # the two "capital" members, every step; "same" alone
    assert max(updates) == 3  # after the first round (each optimizer alone), all three in one update
    assert rel_norm(sep_p[0][0], sep_p[2][0]) > 1e-4  # other seeds: other parameters


def test_members_share_a_forward_pass_while_padding_stays_within_the_slack():
    """bench.joint._chunks by hand: widths 4, 9, 5, 10, 4 with 2 rows each (one with 1 row), sorted by width:
    4, 4 (own 16, padded 16); + 5: padded 6 rows * 5 = 30 > 1.1 * 26; 5 alone; + 9: 3 rows * 9 = 27 > 1.1 * 19;
    9 (1 row) + 10: 3 rows * 10 = 30 <= 1.1 * 29 = 31.9."""
    from bench.joint import _chunks

    class Run:
        def __init__(self, rows, width):
            self.batch = type("B", (), {"input_ids": torch.zeros(rows, width)})()

    runs = [Run(2, 4), Run(1, 9), Run(2, 5), Run(2, 10), Run(2, 4)]
    assert _chunks(runs, 0.1) == [[0, 4], [2], [1, 3]]
    assert _chunks(runs, None) == [[0, 1, 2, 3, 4]]
    assert _chunks(runs, 10.0) == [[0, 4, 2, 1, 3]]


def test_dropout_streams_matter_so_the_comparison_can_fail(tiny_backbone):
    """Control: the same member with another backbone-dropout stream ends elsewhere (well beyond 1e-5)."""
    backbone = tiny_backbone("tiny-bert")
    ends = []
    for draw in (0, 1):
        method, task = lama_member(backbone, "capital", 3, encoder="lstm", backbone_dropout=True)
        torch.manual_seed(100 + draw)
        fit(method, task, {**TRAINER, "early_stopping_patience": None, "max_epochs": 1}, "dev", seed=3)
        ends.append(params_of(method))
    assert max(rel_norm(a, b) for a, b in zip(*ends, strict=True)) > 1e-4


@pytest.mark.slow
def test_ptuning_jointly_on_a_left_to_right_model(tiny_backbone):
    backbone = tiny_backbone("tiny-gpt2")
    trainer = {**TRAINER, "max_epochs": 2, "lr": 1e-3}  # the mini schedule's lr
    separate, joint, sep_p, joint_p, _ = run_both(lama_maker(backbone, encoder="lstm", backbone_dropout=True),
                                                  [("same", 1), ("capital_lr", 2)], lambda i: trainer)
    assert_same(separate, joint, sep_p, joint_p)


@pytest.mark.slow
def test_grid_points_with_their_own_learning_rates_and_step_schedules(tiny_backbone):
    """Grid points of one relation: members differ in lr (one also in seed); per-step linear schedule with
    warmup, evaluation every 2 steps, gradient clipping."""
    backbone = tiny_backbone("tiny-bert")
    lrs = [1e-3, 3e-3, 2e-3]

    def trainer_for(i):
        return {**TRAINER, "lr": lrs[i], "schedule": "linear", "warmup_steps": 2, "eval_every": 2,
                "early_stopping_patience": None, "max_epochs": 2, "grad_clip": 1.0}

    separate, joint, sep_p, joint_p, _ = run_both(lama_maker(backbone, encoder="mlp", backbone_dropout=True),
                                                  [("capital", 7), ("capital", 7), ("capital", 8)], trainer_for)
    assert_same(separate, joint, sep_p, joint_p)
    assert rel_norm(sep_p[0][0], sep_p[1][0]) > 1e-4  # same seed, other lr: other parameters


@pytest.mark.slow
def test_prompt_tuning_on_rte_seeds_jointly_equal_separate_runs(tiny_backbone, tmp_path):
    """Prompt Tuning on a SuperGLUE task (FewGLUE RTE, PET's pattern, 8 examples), three seeds, frozen
    backbone in eval mode (the recipe's backbone_dropout: false), AdamW, selection on dev32 accuracy."""
    from test_classification_run import conf, rte_tree

    from bench.superglue.task import ClassificationTask

    backbone = tiny_backbone("tiny-bert")
    data = str(rte_tree(tmp_path))

    def make(seed):
        torch.manual_seed(seed)
        method = PromptTuning(length=4, init="vocab")
        method.setup(backbone)
        cfg = {"task": {**conf("task", "rte"), "report_split": "dev32"}, "template": conf("template", "pet_rte"),
               "seed": seed, "paths": {"data_dir": data}}
        return method, ClassificationTask(cfg, backbone, method), seed

    trainer = {"lr": 3e-2, "optimizer": "adamw", "batch_size": 4, "max_epochs": 3, "schedule": "linear",
               "warmup_steps": 1, "early_stopping_patience": None}
    separate, joint, sep_p, joint_p, start = run_both(make, [11, 12, 13], lambda i: trainer, selection="dev32")
    assert_same(separate, joint, sep_p, joint_p)
    assert all(rel_norm(s[0], e[0]) > 1e-4 for s, e in zip(start, sep_p, strict=True))


def test_joint_batch_shifts_rows_slots_and_prompt_ids():
    """By hand: two members' batches (widths 3 and 5) as one."""
    from bench.backbones.scoring import pad_batch

    a = pad_batch([[1, 2, 3]], [[2]], 0, soft_positions=[[0, 1]])
    b = pad_batch([[1, 2, 3, 4, 5], [6, 7]], [[4], [1]], 0, soft_positions=[[1], [0]])
    joined = joint_batch([a, b], [2, 1])
    assert joined.input_ids.tolist() == [[1, 2, 3, 0, 0], [1, 2, 3, 4, 5], [6, 7, 0, 0, 0]]
    assert joined.attention_mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert joined.target_rows.tolist() == [0, 1, 2] and joined.target_cols.tolist() == [2, 4, 1]
    assert joined.soft_rows.tolist() == [0, 0, 1, 2] and joined.soft_cols.tolist() == [0, 1, 1, 0]
    assert joined.soft_ids.tolist() == [0, 1, 2, 2] and joined.soft_max_id == 2
    assert joined.soft_per_row == (2, 1, 1)


def test_what_cannot_join_is_refused(tiny_backbone):
    backbone = tiny_backbone("tiny-bert")
    tuned = PTuning(tunes_backbone=True)
    tuned.setup(backbone)
    assert "tunes the backbone" in why_not_joinable([tuned])
    backbone.model.requires_grad_(False)
    a, _ = lama_member(backbone, "capital", 0, encoder="lstm", backbone_dropout=True)
    b, _ = lama_member(backbone, "capital", 0, encoder="lstm", backbone_dropout=False)
    with pytest.raises(ConfigError, match="trainer.joint=off"):
        fit_jointly([Member(a, None, TRAINER, "dev"), Member(b, None, TRAINER, "dev")])


@pytest.mark.slow
@pytest.mark.usefixtures("lama_data")
def test_lama_runner_joint_and_separate_give_the_same_record(tiny_backbone, tmp_path):
    """bench.lama.runner with trainer.joint=auto (3 relations together) and off (one after another): the same
    metrics (every split, every relation), the same per-relation training entries, the same saved prompts."""
    from bench.lama.runner import run_lama

    backbone = tiny_backbone("tiny-bert")
    payloads = {}
    for mode in ("off", "auto"):
        cfg = {"task": {"name": "lama", "variant": "lama34k", "relations": ["P17", "P19", "P1412"],
                        "eval_splits": ["dev", "test"], "selection_split": "dev", "report_split": "test",
                        "batch_size": 64, "limit_per_relation": 12, "protocol": "reference"},
               "model": {"name": "tiny-bert", "lama_vocab_key": "bert-base-cased"}, "method": {"name": "ptuning"},
               "seed": 34, "tag": None, "paths": {"results_dir": str(tmp_path / mode)},
               "template": {"name": "ptuning_lama", "kind": "ptuning", "shape": {"mlm": [1, 1, 1]}},
               "trainer": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 5e-4, "schedule": "exponential",
                           "gamma": 0.98, "batch_size": 4, "max_epochs": 3, "early_stopping_patience": 1,
                           "grad_clip": None, "joint": mode}}
        payloads[mode] = run_lama(cfg, backbone, PTuning(encoder="lstm", backbone_dropout=True))
    off, auto = payloads["off"], payloads["auto"]
    assert "joint" not in off["extra"] and auto["extra"]["joint"]["members"] == 3
    assert auto["metrics"] == off["metrics"] and auto["metrics"]["test"]["overall"]["n_facts"] > 0
    assert auto["per_example"] == off["per_example"]
    for relation, entry in off["extra"]["training"].items():
        joint = auto["extra"]["training"][relation]
        assert {k: v for k, v in joint.items() if k not in ("train_loss_per_epoch", "artifact")} == \
            {k: v for k, v in entry.items() if k not in ("train_loss_per_epoch", "artifact")}
        assert joint["train_loss_per_epoch"] == pytest.approx(entry["train_loss_per_epoch"], rel=1e-5)
        saved = [torch.load(tmp_path / mode / entry["artifact"], weights_only=True)
                 for mode in ("off", "auto")]
        for name, tensor in saved[0]["modules"]["prompt_encoder"].items():
            assert rel_norm(tensor, saved[1]["modules"]["prompt_encoder"][name]) <= 1e-5, name


def test_member_dropout_draws_each_members_mask_as_its_own_cpu_dropout_would():
    """Against PyTorch's own CPU dropout on each member's unpadded slice, from the member's RNG state:
    hidden states (rows, width, hidden) and attention (rows, heads, width, width); padding untouched."""
    import torch.nn.functional as F

    from bench.joint import _Segment, member_dropout

    class Model(torch.nn.Module):
        config = type("Config", (), {"_attn_implementation": "sdpa"})()

    original = F.dropout
    for shape in [(3, 5, 4), (3, 2, 5, 5)]:
        x = torch.randn(shape)
        gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
        states = [g.get_state() for g in gens]
        segments = [_Segment(slice(0, 1), 3, gens[0]), _Segment(slice(1, 3), 5, gens[1])]
        with member_dropout(Model(), segments):
            out = F.dropout(x, p=0.3, training=True)
        assert F.dropout is original and Model.config._attn_implementation == "sdpa"  # restored
        for seg, state in zip(segments, states, strict=True):
            own = (seg.rows, slice(None, seg.width)) if x.dim() == 3 else (
                seg.rows, slice(None), slice(None, seg.width), slice(None, seg.width))
            outside = torch.get_rng_state()
            torch.set_rng_state(state)
            expected = F.dropout(x[own].contiguous(), p=0.3, training=True)
            torch.set_rng_state(outside)
            assert torch.equal(out[own], expected)
        assert torch.equal(out[0, 3:], x[0, 3:]) if x.dim() == 3 else torch.equal(out[0, :, 3:], x[0, :, 3:])
