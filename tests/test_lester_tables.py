"""Lester et al.'s tables and charts from hand-made records: the ensemble table (average / best / vote per task and the
SuperGLUE score over the tasks present, Table 3's numbers beside T5-XXL), the default-recipe table, and the scale
and ablation charts' points (score over tasks per seed, mean and std over seeds, x = parameters); every expected
number is computed by hand in its comment."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from tables_fixture import save

from bench.superglue.data import split_file
from bench.tables import build_table, load_published, load_specs, read_frames
from bench.tables.builder import prepare
from bench.tables.figures import load_figure_specs, write_figures
from bench.tables.scale_figures import published_points, scale_points, scale_summary

PAPER = Path(__file__).resolve().parents[1] / "results" / "paper" / "lester.csv"
MISSING = "missing data" if not split_file("BoolQ", "train", "superglue").is_file() else "—"
MISSING_CB = "missing data" if not split_file("CB", "train", "superglue").is_file() else "—"
ENSEMBLE = "bench.methods.prompt_ensemble.run_prompt_ensemble"
CLASSIFY = "bench.superglue.runner.run_classification"


def lester_record(task: str, model: str, val: dict, *, seed: int = 42, preset: str | None = None,
                  subsets: dict | None = None, length: int = 100, init: str = "labels", runner: str = CLASSIFY,
                  model_cfg: dict | None = None, sentinel: bool | None = None, params: dict | None = None,
                  method: str = "prompt_tuning") -> dict:
    """A finished SuperGLUE record of a Lester run (schema 2): val metrics (score = their mean) and its config."""
    overall = {**val, "score": sum(val.values()) / len(val), "n": 10}
    config_hash = f"{length}{init[0]}{runner[-3:]}{int(bool(sentinel))}{(model_cfg or {}).get('checkpoint', 'x')[:2]}"
    name = "__".join([f"{task}-superglue", model, method, f"t5_{task}", f"seed{seed}", config_hash])
    spec = {"task": task, "variant": "superglue", "model": model, "method": method, "template": f"t5_{task}",
            "seed": seed, "tag": None, "rank": None, "preset": preset or f"lester_prompt_tuning_{task}",
            "config_hash": config_hash}
    task_cfg = {"name": task, "runner": runner, "protocol": "val_selection",  # as the presets: selected on val
                **({} if sentinel is None else {"target_sentinel": sentinel})}
    return {"schema_version": 2, "name": name, "status": "finished", "spec": spec,
            "metrics": {"val": {"overall": overall, "groups": {}, "subsets": subsets or {}}},
            "selection_split": None, "report_split": "val", "params": params or {"trainable": 400},
            "protocol": {"selection_split": None, "selection_rule": "x", "report_split": "val", "seeds": [seed]},
            "config": {"task": task_cfg, "model": {"name": model, **(model_cfg or {})},
                       "method": {"name": method, "component": {"length": length, "init": init}}
                       if method == "prompt_tuning" else {"name": method, "component": {"form": "text2text"}}},
            "extra": {}}


def ensemble_record(task: str, model: str, vote: float, average: float, best: float, seed: int = 42) -> dict:
    subsets = {"average": {"accuracy": average, "score": average}, "best": {"accuracy": best, "score": best},
               "best_selected": {"accuracy": average, "score": average}}
    return lester_record(task, model, {"accuracy": vote}, seed=seed, preset=f"lester_ensemble_{task}", subsets=subsets,
                         runner=ENSEMBLE)


VS = " (protocol val_selection)"  # every Lester row: the recipe selects on the val split it reports
SMALL = "t5-small-lm-adapt"
LM = {"checkpoint": "lm_adapt", "num_params": 76961152}  # Lester Table 4: 76,961,664 total - 512 prompt (length 1)
SPAN = {"checkpoint": "span_corruption", "num_params": 76961152}
TINY = {"total": 1000, "method_modules": 100, "trainable": 100}  # counted backbone: 900


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    runs = tmp_path_factory.mktemp("lester") / "runs"
    for seed in (42, 43):  # the study runs the ensemble once per seed: identical records
        save(runs, ensemble_record("rte", SMALL, 0.60, 0.52, 0.58, seed=seed))
        save(runs, ensemble_record("wic", SMALL, 0.70, 0.64, 0.66, seed=seed))
    save(runs, lester_record("rte", SMALL, {"accuracy": 0.50}, model_cfg=LM))
    save(runs, lester_record("rte", SMALL, {"accuracy": 0.60}, seed=43, model_cfg=LM))
    save(runs, lester_record("wic", SMALL, {"accuracy": 0.70}, model_cfg=LM))
    save(runs, lester_record("cb", SMALL, {"accuracy": 0.9, "f1_macro": 0.5}, model_cfg=LM))  # score 0.7
    # tiny model, no checkpoint field: default recipe on two tasks and two seeds, plus ablation points
    for seed, rte, wic in ((42, 0.5, 0.7), (43, 0.6, 0.9)):
        save(runs, lester_record("rte", "tiny-t5", {"accuracy": rte}, seed=seed, params=TINY))
        save(runs, lester_record("wic", "tiny-t5", {"accuracy": wic}, seed=seed, params=TINY))
    save(runs, lester_record("rte", "tiny-t5", {"accuracy": 0.3}, length=5, preset="lester_length_rte", params=TINY))
    save(runs, lester_record("rte", "tiny-t5", {"accuracy": 0.2}, init="random", preset="lester_init_rte", params=TINY))
    save(runs, lester_record("rte", "t5-v1_1-small", {"accuracy": 0.4}, model_cfg=SPAN))
    save(runs, lester_record("rte", "t5-v1_1-small", {"accuracy": 0.45}, model_cfg=SPAN, sentinel=True,
                             preset="lester_sentinel_rte"))
    # Model Tuning (every weight, span-corruption T5 1.1): the scale chart's second line; not on LM-adapted models
    for seed, rte in ((42, 0.8), (43, 0.7)):
        save(runs, lester_record("rte", "t5-v1_1-small", {"accuracy": rte}, seed=seed, model_cfg=SPAN,
                                 method="model_tuning", preset="lester_model_tuning_rte"))
    save(runs, lester_record("wic", "t5-v1_1-small", {"accuracy": 0.6}, model_cfg=SPAN, method="model_tuning",
                             preset="lester_model_tuning_wic"))
    save(runs, lester_record("rte", SMALL, {"accuracy": 0.99}, model_cfg=LM, method="model_tuning",
                             preset="lester_model_tuning_rte"))
    save(runs, lester_record("rte", "tiny-t5", {"accuracy": 0.55}, method="model_tuning", preset="lester_model_tuning_rte",
                             params={"total": 900, "method_modules": 0, "trainable": 900}))
    return read_frames(runs)


def _table(name: str, frames):
    (spec,) = load_specs(only=[name])
    table = build_table(spec, frames, load_published(PAPER))
    return table.display.set_index("Model")


def test_ensemble_table_average_best_vote_and_superglue_over_the_tasks_present(frames):
    display = _table("lester_ensemble", frames)
    assert display.loc[SMALL + VS, "RTE Acc Avg"] == "52.0"
    assert display.loc[SMALL + VS, "RTE Acc Best (val)"] == "58.0"
    assert display.loc[SMALL + VS, "RTE Acc Ens"] == "60.0"  # both seeds' identical records: mean 60
    assert display.loc[SMALL + VS, "SuperGLUE Avg"] == "58.0 (2/8)"  # (52 + 64) / 2 over RTE and WiC
    assert display.loc[SMALL + VS, "SuperGLUE Best (val)"] == "62.0 (2/8)"  # (58 + 66) / 2
    assert display.loc[SMALL + VS, "SuperGLUE Ens"] == "65.0 (2/8)"  # (60 + 70) / 2
    assert display.loc[SMALL + VS, "BoolQ Acc Ens"] == MISSING
    # Table 3 (T5-XXL) beside no record of ours: the paper's row with its numbers
    assert display.loc["t5-xxl-lm-adapt", "RTE Acc Ens"] == "— / 93.5 (—)"
    assert display.loc["t5-xxl-lm-adapt", "CB F1 Avg"] == f"{MISSING_CB} / 99.0 (—)"
    assert display.loc["t5-xxl-lm-adapt", "SuperGLUE Ens"] == "— / 91.3 (—)"
    assert "tiny-t5" + VS not in display.index  # default-recipe runs are not ensembles


def test_prompt_tuning_table_keeps_the_default_recipe_only(frames):
    display = _table("lester_prompt_tuning", frames)
    assert display.loc[SMALL + VS, "RTE Acc"] == "55.0 (7.1)"  # seeds 50, 60: sd sqrt(50) = 7.07; not the ensemble's 60
    assert display.loc[SMALL + VS, "CB F1"] == "50.0 (—)"  # one seed: no sd
    assert display.loc[SMALL + VS, "SuperGLUE"] == "65.0 (3/8)§"  # RTE 55, WiC 70, CB (90 + 50) / 2 = 70: 195 / 3; § seed 43 lacks WiC, CB
    assert display.loc["tiny-t5" + VS, "RTE Acc"] == "55.0 (7.1)"  # 50, 60; the length-5 and random-init runs are other presets
    assert display.loc["t5-xxl-lm-adapt", "WiC Acc"] == "— / 76.2 (—)"  # Table 3's Average of five prompts
    assert display.loc["t5-v1_1-small" + VS, "RTE Acc"] == "40.0 (—)§"  # span corruption: its own row; § no seed 43


def test_model_tuning_table_keeps_the_model_tuning_runs(frames):
    display = _table("lester_model_tuning", frames)
    assert display.loc["t5-v1_1-small" + VS, "RTE Acc"] == "75.0 (7.1)"  # seeds 80, 70: sd sqrt(50) = 7.07
    assert display.loc["t5-v1_1-small" + VS, "WiC Acc"] == "60.0 (—)"  # one seed: no sd
    assert display.loc["t5-v1_1-small" + VS, "SuperGLUE"] == "67.5 (2/8)"  # (75 + 60) / 2; no §: WiC's preset has seed 42 only
    assert display.loc["tiny-t5" + VS, "RTE Acc"] == "55.0 (—)§"  # not the prompt-tuning runs' 50 / 60; § no seed 43
    assert "t5-xxl-lm-adapt" not in display.index  # no published rows


def _points(name: str, frames) -> pd.DataFrame:
    (spec,) = load_figure_specs(only=[name])
    data = prepare(dict(spec), frames)
    data = data.assign(row=data["row"] + data["setting"])  # as bench.tables.figures keys a chart's rows
    return scale_summary(scale_points(spec, data, frames.by_name)).set_index(["series", "row"])


def test_scale_chart_points_by_hand(frames):
    points = _points("lester_scale", frames)
    tiny = points.loc[("prompt_tuning", "tiny-t5" + VS)]
    # seed 42: (50 + 70) / 2 = 60; seed 43: (60 + 90) / 2 = 75; mean 67.5, sd sqrt(2 * 7.5^2) = 10.607
    assert tiny["mean"] == pytest.approx(67.5) and tiny["std"] == pytest.approx(math.sqrt(112.5))
    assert tiny["n_seeds"] == 2 and tiny["n_tasks"] == 2 and tiny["x"] == 900  # 1000 counted - 100 prompt
    small = points.loc[("prompt_tuning", SMALL + VS)]
    # seed 42: RTE 50, WiC 70, CB 70 -> 63.33; seed 43: RTE 60 only -> 60; mean 61.67, fewest tasks 1
    assert small["mean"] == pytest.approx((190 / 3 + 60) / 2) and small["n_tasks"] == 1
    assert small["x"] == 76961152  # conf/model num_params
    assert ("prompt_tuning", "t5-v1_1-small" + VS) not in points.index  # span corruption: not Figure 1's line
    tuned = points.loc[("model_tuning", "t5-v1_1-small" + VS)]
    # seed 42: RTE 80, WiC 60 -> 70; seed 43: RTE 70 -> 70; mean 70, sd 0, fewest tasks 1
    assert tuned["mean"] == pytest.approx(70.0) and tuned["std"] == pytest.approx(0.0) and tuned["n_tasks"] == 1
    assert tuned["x"] == 76961152 and tuned["n_seeds"] == 2
    assert points.loc[("model_tuning", "tiny-t5" + VS), "mean"] == pytest.approx(55.0)
    assert points.loc[("model_tuning", "tiny-t5" + VS), "x"] == 900  # counted: no method modules
    assert ("model_tuning", SMALL + VS) not in points.index  # model tuning on an LM-adapted model: not Figure 1's
    assert len(points) == 4  # no ensemble, ablation or sentinel record on this chart
    (spec,) = load_figure_specs(only=["lester_scale"])
    paper = published_points(spec, load_published(PAPER))
    assert paper[["series", "model", "x", "value"]].values.tolist() == [
        ["prompt_tuning", "t5-xxl-lm-adapt", 11135332352.0, 90.5]]  # Table 3 average, at Table 4's T5-XXL size


def test_ablation_panels_split_by_their_axis(frames):
    length = _points("lester_ablation_length", frames)
    assert length.loc[("len5", "tiny-t5" + VS), "mean"] == pytest.approx(30.0)
    assert length.loc[("len100", "tiny-t5" + VS), "mean"] == pytest.approx(67.5)  # the default recipe is the 100 point
    init = _points("lester_ablation_init", frames)
    assert init.loc[("init_random", "tiny-t5" + VS), "mean"] == pytest.approx(20.0)
    assert ("init_labels", "tiny-t5" + VS) in init.index and ("init_random", SMALL + VS) not in init.index
    checkpoint = _points("lester_ablation_checkpoint", frames)
    assert checkpoint.loc[("ckpt_span_corruption", "t5-v1_1-small" + VS), "mean"] == pytest.approx(40.0)
    assert checkpoint.loc[("ckpt_sentinel", "t5-v1_1-small" + VS), "mean"] == pytest.approx(45.0)
    assert checkpoint.loc[("ckpt_lm_adapt", SMALL + VS), "mean"] == pytest.approx((190 / 3 + 60) / 2)
    assert ("ckpt_none", "tiny-t5" + VS) in checkpoint.index


def test_the_charts_are_drawn(frames, tmp_path):  # two of the four (same code; the others' points are tested above)
    specs = load_figure_specs(only=["lester_scale", "lester_ablation_checkpoint"])
    written = write_figures(frames, tmp_path, specs, load_published(PAPER))
    assert sorted(p.name for p in written) == ["lester_ablation_checkpoint.pdf", "lester_ablation_checkpoint.png",
                                               "lester_scale.pdf", "lester_scale.png"]


def test_published_table3_rows_carry_source_metric_and_check():
    paper = load_published(PAPER)
    assert len(paper) == 36 and (paper["checked"] == "yes").all()  # 11 metric columns + SuperGLUE, x 3
    assert paper["source"].str.contains("arXiv:2104.08691").all() and paper["metric"].notna().all()
    ens = paper.set_index("column")["value"]
    assert ens["superglue_ensemble"] == 91.3 and ens["multirc_f1a_average"] == 88.7 and ens["rte_average"] == 92.6
