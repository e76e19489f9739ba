"""LM-BFF: k-shot data, the demonstration sampler against a plain cosine computation, LM-BFF's input
layout with demonstrations, dev selection in the record, and mean / std over the 5 splits."""

from __future__ import annotations

import json
import math
import random
import statistics
from types import SimpleNamespace

import pytest
import torch

from bench.errors import ConfigError, MissingWeightsError
from bench.lmbff import data as kd
from bench.lmbff import demos as ds
from bench.lmbff.embeddings import encoder_dir, mean_pool


# data -------------------------------------------------------------------------------------------
def test_kshot_splits_have_16_per_class_and_the_original_test_sets():
    for task, n_labels in (("SST-2", 2), ("SNLI", 3)):
        for seed in kd.SEEDS:
            for split in ("train", "dev"):
                rows = kd.load_split(task, split, seed)
                assert [sum(ex.label == i for ex in rows) for i in range(n_labels)] == [16] * n_labels
    assert len(kd.load_split("SST-2", "test", 13)) == 872
    assert len(kd.load_split("SNLI", "test", 13, variant="k16_esnli")) == 9824  # e-SNLI's copy: its own variant


def test_snli_test_is_lmbffs_raw_dev_set_or_missing_data(tmp_path):
    """LM-BFF's SNLI test set is SNLI 1.0 dev (9,842 raw pairs); without it the run stops with "missing data"."""
    from bench.errors import MissingDataError
    from bench.lmbff.availability import cell_reason, check_data

    assert kd.split_file("SNLI", "test", 13).name == "test.jsonl"
    assert kd.split_file("SNLI", "test", 13, variant="k16_esnli").name == "test_esnli.jsonl"
    cfg = {"task": {"dataset": "SNLI", "variant": "k16", "report_split": "test"}, "seed": 13,
           "paths": {"data_dir": str(tmp_path)}}
    with pytest.raises(MissingDataError, match="missing data.*SNLI 1.0 dev") as err:
        check_data(cfg)
    assert "data_prep lm_bff --full --download" in str(err.value)
    raw = kd.split_file("SNLI", "test", 13)
    if raw.is_file():  # fetched with network: LM-BFF's set
        assert len(kd.load_split("SNLI", "test", 13)) == 9842
        assert cell_reason({"task": "snli", "variant": "k16"}) is None
    else:
        assert cell_reason({"task": "snli", "variant": "k16"}) == "missing data"
        mixed = {"task": ["sst2", "snli"], "variant": "k16"}  # lmbff_main: the column key names the task
        assert cell_reason(mixed | {"column": "snli:demo"}) == "missing data"
        assert cell_reason(mixed | {"column": "sst2:demo"}) is None and cell_reason(mixed) is None
    assert cell_reason({"task": "snli", "variant": "k16_esnli"}) is None
    assert cell_reason({"task": "sst2", "variant": "k16"}) is None


def test_limit_spreads_rows_over_the_file_so_every_class_stays():
    rows = kd.load_split("SST-2", "dev", 13, limit=4)
    assert [ex.meta["row"] for ex in rows] == [0, 8, 16, 24]
    assert {ex.label for ex in rows} == {0, 1}
    with pytest.raises(ConfigError, match="seed"):
        kd.load_split("SST-2", "train", 34)


# sampler ----------------------------------------------------------------------------------------
def _plain_cos(a, b):
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


QUERY = [1.0, 0.0]
SUPPORT = [[1.0, 0.1], [0.0, 1.0], [0.9, 0.5], [-1.0, 0.0], [0.7, 0.7], [0.2, -1.0], [1.0, -0.2], [0.1, 0.1]]
LABELS = [0, 0, 0, 0, 1, 1, 1, 1]


def test_filter_keeps_the_most_similar_share_of_each_label_as_plain_cosine():
    sims = ds.cosine(torch.tensor([QUERY]), torch.tensor(SUPPORT))[0].tolist()
    plain = [_plain_cos(QUERY, s) for s in SUPPORT]
    assert sims == pytest.approx(plain)
    # by hand: label 0 ranks 0 (0.995), 2 (0.874), 1 (0), 3 (-1); label 1 ranks 6 (0.981), 4 (0.707), 7, 5;
    # rate 0.5 of 8 candidates over 2 labels keeps int(8 // 2 * 0.5) = 2 per label
    assert ds.filtered_candidates(sims, LABELS, 2, 0.5) == [0, 6, 2, 4]
    # a training query never demonstrates itself: 7 candidates -> int(7 // 2 * 0.5) = 1 per label
    assert ds.filtered_candidates(sims, LABELS, 2, 0.5, exclude=0) == [6, 2]
    assert ds.filtered_candidates(sims, LABELS, 2, None, exclude=3) == [0, 1, 2, 4, 5, 6, 7]


def test_one_per_label_is_the_first_of_each_label_in_a_shuffle_in_label_order():
    cands, seen = [0, 6, 2, 4], set()
    for draw in range(50):
        order = list(cands)
        random.Random(draw).shuffle(order)
        plain = [next(i for i in order if LABELS[i] == 0), next(i for i in order if LABELS[i] == 1)]
        picked = ds.one_per_label(cands, LABELS, 2, random.Random(draw))
        assert picked == plain
        seen.add(tuple(picked))
    assert seen == {(0, 6), (0, 4), (2, 6), (2, 4)}


def test_mean_pool_is_the_masked_mean():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_missing_encoder_names_the_fix(tmp_path):
    with pytest.raises(MissingWeightsError, match="BENCH_SBERT_DIR"):
        encoder_dir(tmp_path / "nowhere")


# the task with demonstrations ------------------------------------------------------------------
def sst2_demo_task(model: str, family: str, limit: int, **method_args):
    """A KShotTask on the first ``limit`` rows of SST-2 split 13, over a tiny tokenizer (no weights)."""
    from omegaconf import OmegaConf
    from test_prompt_tiny import tiny_tokenizer

    from bench.lmbff.method import PromptDemoTuning
    from bench.lmbff.runner import KShotTask
    from bench.paths import REPO_ROOT

    backbone = SimpleNamespace(family=family, tokenizer=tiny_tokenizer(model), device=torch.device("cpu"))
    cfg = {"task": OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf/task/sst2.yaml")) | {"limit": limit},
           "template": OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf/template/lmbff_sst2.yaml")),
           "seed": 13, "paths": {}}
    return KShotTask(cfg, backbone, PromptDemoTuning(**method_args))


@pytest.fixture(scope="module")
def demo_task():
    task = sst2_demo_task("tiny-roberta", "mlm", 4, num_sample=2)
    gen = torch.Generator().manual_seed(0)
    emb = {split: {ex.meta["row"]: torch.randn(8, generator=gen) for ex in task.examples(split)}
           for split in ("train", "dev")}
    task._embeddings = emb  # hand-made embeddings instead of the Sentence-BERT ones
    return task, emb


def test_demonstrations_are_drawn_from_the_plain_cosine_top_half_of_each_label(demo_task):
    task, emb = demo_task
    train = task.examples("train")
    for query in task.examples("dev"):
        q = emb["dev"][query.meta["row"]].tolist()
        top = {}
        for label in (0, 1):
            ranked = sorted((ex for ex in train if ex.label == label),
                            key=lambda ex: -_plain_cos(q, emb["train"][ex.meta["row"]].tolist()))
            top[label] = {ex.uid for ex in ranked[:8]}  # int(32 // 2 * 0.5) = 8 per label
        seen = {0: set(), 1: set()}
        for draw in range(60):
            demos = task.demonstrations(query, draw)
            assert [d.label for d in demos] == [0, 1]  # one per label, in label order
            for d in demos:
                assert d.uid in top[d.label]
                seen[d.label].add(d.uid)
        assert seen == top  # 60 draws reach every kept candidate


def test_demonstration_input_is_lmbffs_layout(demo_task):
    task, _ = demo_task
    tok = task.tok
    query = task.examples("dev")[0]
    demos = task.demonstrations(query, 0)
    rendered = task.render_with(query, demos)
    expected = (f"<s>{query.fields['sentence']} It was<mask>.</s>{demos[0].fields['sentence']} It was terrible.</s>"
                f"{demos[1].fields['sentence']} It was great.</s>")
    assert tok.decode(rendered.input_ids[:128]) == expected[: len(tok.decode(rendered.input_ids))]
    assert rendered.input_ids[rendered.target_positions[0]] == tok.mask_token_id
    assert len(rendered.input_ids) <= 128  # LM-BFF's max_seq_length for SST-2, tail cut


# selection ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_selected_checkpoint_is_the_best_dev_evaluation_and_the_record_says_so(tmp_path):
    from bench.job import run_job
    from bench.study import compose_job, hydra_context

    overrides = ["seed=21", "debug=lmbff_smoke", "trainer.max_steps=6", "trainer.eval_every=1", "task.limit=8",
                 f"paths.results_dir={tmp_path}", "trainer.lr=5e-3"]
    with hydra_context():
        cfg = compose_job("lmbff_sst2_prompt", "tiny-roberta", overrides)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("bench.job.job_ranks", lambda cfg: [None])
            mp.setattr("bench.job.grid_points", lambda cfg: [{}])
            run_job(cfg, "lmbff_sst2_prompt")
    (path,) = (tmp_path / "runs").rglob("*.json")
    record = json.loads(path.read_text())
    fit = record["extra"]["fit"]
    values = [h["value"] for h in fit["history"]]
    assert [h["step"] for h in fit["history"]] == [1, 2, 3, 4, 5, 6]
    best = max(values)
    assert fit["best_value"] == best and fit["best_step"] == values.index(best) + 1  # the earlier one on a tie
    assert record["metrics"]["dev"]["overall"]["accuracy"] == best  # re-scored with the restored state
    assert fit["selected"] == {"step": fit["best_step"], "dev": best, "best_of_history": True}
    assert record["protocol"]["selection_split"] == "dev" and record["protocol"]["report_split"] == "test"
    assert "best accuracy on the k-shot dev" in record["protocol"]["selection_rule"]
    assert "ties keep the earlier" in record["protocol"]["selection_rule"]


# mean and std over splits -------------------------------------------------------------------------
def _record(seed: int, lr: float, dev: float, test: float) -> dict:
    h = f"{seed:03d}{int(lr * 1e6):05d}"
    name = f"sst2-k16__roberta-large__pet__lmbff_sst2__seed{seed}__{h}"
    spec = {"task": "sst2", "variant": "k16", "model": "roberta-large", "method": "pet", "template": "lmbff_sst2",
            "seed": seed, "tag": None, "rank": 0, "preset": None, "config_hash": h}
    return {"schema_version": 2, "name": name, "status": "finished", "spec": spec,
            "metrics": {"test": {"overall": {"accuracy": test}}, "dev": {"overall": {"accuracy": dev}}},
            "selection_split": "dev", "report_split": "test", "params": {"trainable": 1},
            "protocol": {"selection_split": "dev", "selection_rule": "x", "report_split": "test", "seeds": [seed]},
            "config": {"task": {}, "model": {}, "method": {"name": "pet"}, "trainer": {"lr": lr}}, "extra": {}}


def test_table_mean_and_std_over_splits_equal_a_plain_computation(tmp_path):
    from bench.tables import build_table, load_specs, read_frames

    rng = random.Random(7)
    plain = []
    for seed in kd.SEEDS:
        points = [(lr, round(rng.random(), 4), round(rng.random(), 4)) for lr in (1e-5, 2e-5, 5e-5)]
        for lr, dev, test in points:
            path = tmp_path / "runs" / "sst2" / f"{_record(seed, lr, dev, test)['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_record(seed, lr, dev, test)))
        plain.append(100 * max(points, key=lambda p: p[1])[2])  # the split's best dev point, its test accuracy
    (spec,) = load_specs(only=["lmbff_table1_sst2"])
    table = build_table(spec, read_frames(tmp_path / "runs"))
    cell = table.tidy[(table.tidy["column"] == "sst2:prompt-r0") & table.tidy["selected"]].iloc[0]
    assert cell["n"] == 5
    assert cell["mean"] == pytest.approx(statistics.mean(plain))
    assert cell["pstd"] == pytest.approx(statistics.pstdev(plain))  # LM-BFF's numpy std (ddof 0), shown
    assert cell["std"] == pytest.approx(statistics.stdev(plain))
    rows = table.tidy[table.tidy["column"] == "sst2:prompt-r0"]
    assert len(cell["config_hash"].split(";")) == 5  # the picked point of each split
    assert (~rows["selected"]).sum() == 10  # and the other 2 x 5 grid points, each on its own CSV row


def test_gpt2_reads_demonstrations_before_the_input_with_blank_lines():
    task = sst2_demo_task("tiny-gpt2", "clm", 2, num_sample=1, filter_rate=None)
    tok = task.tok
    query = task.examples("dev")[0]
    demos = task.demonstrations(query, 0)
    rendered = task.render_with(query, demos)
    text = tok.decode(rendered.input_ids)
    assert text == (f"{demos[0].fields['sentence']} It was terrible.\n\n{demos[1].fields['sentence']} It was great.\n\n"
                    f"{query.fields['sentence']} It was")
    assert rendered.target_positions == [len(rendered.input_ids) - 1]  # the next token after "was" is scored


def test_finetune_input_is_lmbffs_plain_pair_with_one_separator():
    from omegaconf import OmegaConf
    from test_prompt_tiny import tiny_tokenizer

    from bench.lmbff.runner import KShotTask
    from bench.methods.finetune import FineTune
    from bench.paths import REPO_ROOT

    tok = tiny_tokenizer("tiny-roberta")
    backbone = SimpleNamespace(family="mlm", tokenizer=tok, device=torch.device("cpu"))
    cfg = {"task": OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf/task/snli.yaml")) | {"limit": 2},
           "template": {}, "seed": 13, "paths": {}}
    task = KShotTask(cfg, backbone, FineTune())
    ex = task.examples("dev")[0]
    (ids,) = task._item(ex, train=False).sequences
    assert tok.decode(ids) == f"<s>{ex.fields['premise']}</s>{ex.fields['hypothesis']}</s>"


def test_lmbff_heads_untied_lm_head_and_normal_classifier_init(tiny_backbone):
    """LM-BFF's presets: the LM head's output matrix is its own copy of the embeddings (RobertaForPromptFinetuning
    does not tie), and the classifier head starts from N(0, 0.02) weights and zero biases (init_weights)."""
    import copy

    from bench.lmbff.method import LMBFFFineTune, LMBFFPatternTuning

    backbone = copy.deepcopy(tiny_backbone("tiny-roberta"))
    model = backbone.model
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # the suite's tied head
    LMBFFPatternTuning().setup(backbone)
    out, emb = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    assert out is not emb and torch.equal(out, emb) and out.requires_grad
    torch.manual_seed(0)
    method = LMBFFFineTune()
    method.setup(backbone)
    method.set_num_labels(3)
    linears = [m for m in method.head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2  # RoBERTa's head: dense + out_proj
    for layer in linears:
        assert torch.count_nonzero(layer.bias) == 0
        assert 0.017 < float(layer.weight.detach().std()) < 0.023  # 64 x 64 and 3 x 64 draws of N(0, 0.02)
    torch.manual_seed(0)
    default = LMBFFFineTune(head_init="torch")
    default.setup(backbone)
    default.set_num_labels(3)
    assert float(next(m for m in default.head.modules() if isinstance(m, torch.nn.Linear)).weight.detach().std()) > 0.05
    with pytest.raises(ConfigError, match="head_init"):
        LMBFFFineTune(head_init="xavier")


def test_lmbff_tie_rule_is_the_first_trial_in_its_loop_order():
    """gather_result.py keeps the first of tied trials in run_experiment.sh's order: batch 2, 4, 8 outside
    lr 1e-5, 2e-5, 5e-5; the tables' rule keeps the first config hash (by hand: 'a' vs 'b')."""
    from bench.lmbff.ties import lmbff_order, pick

    a = {"config_hash": "a", "lr": 1e-5, "batch": 4, "dev": 0.5, "test": 0.9}
    b = {"config_hash": "b", "lr": 5e-5, "batch": 2, "dev": 0.5, "test": 0.7}
    c = {"config_hash": "0", "lr": 1e-5, "batch": 2, "dev": 0.4, "test": 1.0}
    assert lmbff_order(5e-5, 2) == (0, 2) and lmbff_order(1e-5, 4) == (1, 0)
    assert pick([a, b, c], "hash") is a
    assert pick([a, b, c], "lmbff") is b


def test_table_grid_ties_go_to_lmbffs_first_trial(tmp_path):
    """Every split's three points tie on dev; the table keeps LM-BFF's first trial (batch 2 before 4 before 8),
    which here is the last in config-hash order, so the config-hash rule would show another test score."""
    from bench.lmbff.ties import lmbff_order
    from bench.tables import build_table, load_specs, read_frames

    expected = []
    for seed in kd.SEEDS:
        for batch, test, tag in ((8, 0.1, "a"), (4, 0.2, "b"), (2, 0.9, "c")):  # hash order a < b < c
            record = _record(seed, 1e-5, 0.5, test)
            record["spec"]["config_hash"] = h = f"{tag}{seed:03d}"
            record["name"] = record["name"].rsplit("__", 1)[0] + f"__{h}"
            record["config"]["trainer"]["batch_size"] = batch
            b, lr = lmbff_order(1e-5, batch)
            record["extra"]["tie_order"] = b * 4 + lr
            path = tmp_path / "runs" / "sst2" / f"{record['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record))
        expected.append(f"c{seed:03d}")
    (spec,) = load_specs(only=["lmbff_table1_sst2"])
    table = build_table(spec, read_frames(tmp_path / "runs"))
    cell = table.tidy[(table.tidy["column"] == "sst2:prompt-r0") & table.tidy["selected"]].iloc[0]
    assert sorted(cell["config_hash"].split(";")) == sorted(expected)
    assert cell["mean"] == pytest.approx(90.0)  # batch 2's test score on every split; hash order would give 10.0


def test_snli_test_parser_reads_glue_dev_as_lmbffs_processor_does(tmp_path):
    """GLUE SNLI rows: sentence1 / sentence2 in columns 8 and 9, the gold label last (LM-BFF's SnliProcessor)."""
    from bench.errors import DataError
    from data_prep.lm_bff.snli_test import parse

    header = "index\tcaptionID\tpairID\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label"
    row = "0\tc\tp\t(b)\t(b)\t(p)\t(p)\tTwo women are embracing.\tThe sisters are hugging.\tneutral\tneutral"
    assert parse(f"{header}\n{row}\n", tmp_path / "dev.tsv") == [
        {"premise": "Two women are embracing.", "hypothesis": "The sisters are hugging.", "label": "neutral"}]
    with pytest.raises(DataError, match="gold_label"):
        parse(f"{header}\n{row[:-7]}-\n", tmp_path / "dev.tsv")


def test_lmbff_refuses_an_unmarked_faster_precision():
    """LM-BFF runs fp32; a bf16 run must carry its tag (its own table row), else it is refused before it runs."""
    from bench.lmbff.runner import run_lmbff

    backbone = SimpleNamespace(precision=SimpleNamespace(compute=torch.bfloat16))
    with pytest.raises(ConfigError, match="tag=bf16"):
        run_lmbff({"tag": None, "seed": 13, "task": {}}, backbone, None)
    with pytest.raises(ConfigError, match="tag=bf16"):
        run_lmbff({"tag": "smoke", "seed": 13, "task": {}}, backbone, None)


# every preset's method builds ------------------------------------------------------------------
def test_every_lmbff_preset_method_instantiates_with_its_composed_keys():
    """The method component each LM-BFF preset composes (base method file + preset) builds: a key added to a base
    method file (e.g. finetune's ``head``) must be accepted by the LM-BFF subclass the preset names."""
    from hydra.utils import instantiate

    from bench.study import compose_job, hydra_context, load_study

    presets = load_study("lmbff")["presets"]
    with hydra_context():
        built = {p: instantiate(compose_job(p, "tiny-roberta", []).method.component) for p in presets}
    assert type(built["lmbff_sst2_finetune"]).__name__ == "LMBFFFineTune"
    assert built["lmbff_sst2_finetune"].head_layout == "suite" and built["lmbff_sst2_finetune"].head_init == "normal"
