"""Golden equivalence: on the same hand-made records, the spec-driven tables and charts show the same
numbers as the old bench.aggregate / bench.plots modules did.

tests/golden/ holds what those modules wrote for tests/tables_fixture.py before they were removed
(their tidy CSVs, the LAMA-29k display cells, the charts' plotted data) and the published numbers
of that time (a frozen copy, so corrections to results/paper/published.csv do not move the goldens).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from tables_fixture import write_fixture

from bench.tables import build_table, load_published, load_specs, read_frames
from bench.tables.figures import figures_for, load_figure_specs

GOLDEN = Path(__file__).resolve().parent / "golden"
PUBLISHED = GOLDEN / "published.csv"


def _old_tables() -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in (GOLDEN / "tables").glob("*.csv") if p.stem != "lama29k_display"}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    write_fixture(root / "runs")
    frames = read_frames(root / "runs")
    assert frames.problems == []
    published = load_published(PUBLISHED)
    new = {}
    for spec in load_specs():
        table = build_table(spec, frames, published)
        if table is not None:
            new[table.name] = table
    return _old_tables(), new, frames


def _same(a, b) -> bool:
    a = None if a is None or (isinstance(a, float) and math.isnan(a)) else float(a)
    b = None if b is None or (isinstance(b, float) and math.isnan(b)) else float(b)
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-9)


def test_the_same_tables_are_built(both):
    old, new, _ = both
    assert set(old) == set(new)


@pytest.mark.parametrize("name", ["lama34k", "lama29k"])
def test_lama_tables_have_the_same_numbers(both, name):
    old, new, _ = both
    tidy = new[name].tidy
    tidy = tidy[tidy["selected"].astype(bool)]
    for _, cell in old[name].iterrows():
        hit = tidy[(tidy["Model"] == cell["row"]) & ((tidy["column"] == cell["column"]) | (tidy["key"] == cell["column"]))]
        if hit.empty:  # the paper's AutoPrompt cell for a model without that column of ours
            assert name == "lama29k" and cell["column"].startswith("autoprompt") and pd.isna(cell["ours"])
            continue
        got = hit.iloc[0]
        for old_key, new_key in (("ours", "value"), ("paper", "paper"), ("delta", "delta"),
                                 ("ours_pooled", "ours_pooled"), ("ours_real_only", "ours_real_only"),
                                 ("n_facts", "ours_n_facts")):
            assert _same(cell[old_key], got[new_key]), (name, cell["row"], cell["column"], old_key)
    assert len(old[name]) >= 5


def test_lama29k_display_cells_are_identical(both):
    _, new, _ = both
    display = pd.read_csv(GOLDEN / "tables" / "lama29k_display.csv", dtype=str, keep_default_na=False)
    ours = new["lama29k"].display.rename(columns={"Model": "model"})
    assert display.columns.tolist() == ours.columns.tolist()
    pd.testing.assert_frame_equal(display.reset_index(drop=True), ours.reset_index(drop=True))


@pytest.mark.parametrize("variant", ["lama34k", "lama29k"])
def test_per_relation_tables_have_the_same_numbers(both, variant):
    old, new, _ = both
    name = f"{variant}_per_relation"
    tidy = new[name].tidy
    wide = old[name].set_index("relation")
    count = 0
    for column in wide.columns:
        row, key = column.split(" / ")
        for relation, value in wide[column].items():
            hit = tidy[(tidy["Relation"] == relation) & (tidy["group"] == row) & (tidy["column"] == key)]
            if pd.isna(value):
                assert hit.empty or pd.isna(hit.iloc[0]["value"])
                continue
            assert _same(value, hit.iloc[0]["value"]), (name, column, relation)
            count += 1
    assert count >= 10


def test_p17_table_has_the_same_numbers_and_cells(both):
    old, new, _ = both
    tidy = new["sensitivity_p17"].tidy
    for _, cell in old["sensitivity_p17"].iterrows():
        if pd.isna(cell["row"]):
            continue
        hit = tidy[(tidy["Prompt"] == cell["prompt"]) & (tidy["group"] == cell["row"])]
        value = hit.iloc[0]["value"] if not hit.empty else None
        assert _same(cell["ours"], value), (cell["prompt"], cell["row"])
        if not hit.empty:
            assert _same(cell["delta"], hit.iloc[0]["delta"]) and _same(cell["paper"], hit.iloc[0]["paper"])
    shown = new["sensitivity_p17"].display
    assert shown.columns.tolist()[1:] == ["paper (bert-base-cased)", "bert-base-cased", "bert-base-cased Δ",
                                          "tiny-gpt2 [smoke]"]


@pytest.mark.parametrize("set_name", ["pararel", "lpaqa_paraphrase"])
def test_spread_tables_have_the_same_numbers(both, set_name):
    old, new, _ = both
    tidy = new[f"sensitivity_{set_name}"].tidy
    count = 0
    for _, stat in old[f"sensitivity_{set_name}"].iterrows():
        def get(column, field, stat=stat):
            hit = tidy[(tidy["Relation"] == stat["relation"]) & (tidy["group"] == stat["row"]) &
                       (tidy["column"] == column)]
            return hit.iloc[0][field] if not hit.empty else None
        for old_key, column, field in (("min", "spread", "min"), ("max", "spread", "max"), ("sd", "sd", "std"),
                                       ("median", "spread", "median"), ("n_prompts", "sd", "n"),
                                       ("first", "spread", "first"), ("manual", "lama", "value"),
                                       ("ptuning", "ptuning", "value")):
            assert _same(stat[old_key], get(column, field)), (set_name, stat["row"], stat["relation"], old_key)
            count += 1
    assert count >= 16


def test_summary_has_the_same_numbers(both):
    old, new, _ = both
    tidy = new["sensitivity_summary"].tidy
    for _, row in old["sensitivity_summary"].iterrows():
        def get(column, field="value", row=row):
            hit = tidy[(tidy["Model"] == row["row"]) & (tidy["Prompt set"] == row["set"]) & (tidy["column"] == column)]
            return hit.iloc[0][field]
        for old_key, column, field in (("relations", "relations", "n"), ("prompts_per_relation", "prompts", "value"),
                                       ("worst", "worst", "value"), ("first", "first", "value"),
                                       ("best", "best", "value"), ("mean_range", "mean_range", "value"),
                                       ("mean_sd", "mean_sd", "value"), ("manual", "manual", "value"),
                                       ("ptuning", "ptuning", "value"), ("ptuning_relations", "ptuning", "n")):
            assert _same(row[old_key], get(column, field)), (row["row"], row["set"], old_key)


def _chart_data(fig) -> dict:
    """What a chart shows: scatter offsets and colours by label, box medians and whiskers, size, title."""
    ax = fig.axes[0]
    data = {"size": [round(float(x), 3) for x in fig.get_size_inches()], "title": ax.get_title(),
            "xticks": [t.get_text() for t in ax.get_xticklabels()], "ylim": [round(float(y), 6) for y in ax.get_ylim()]}
    data["scatter"] = {c.get_label(): sorted((round(float(x), 6), round(float(y), 6)) for x, y in c.get_offsets())
                       for c in ax.collections}
    added = ("ours-mean", "paper")  # markers drawn since the old plots were frozen (our mean, the paper's number)
    data["lines"] = sorted(tuple(round(float(v), 6) for v in line.get_ydata()) for line in ax.lines
                           if len(line.get_ydata()) and line.get_gid() not in added)
    data["legend"] = [t for t in ax.get_legend_handles_labels()[1] if t != "ours: mean" and not t.startswith("paper")]
    return data


def test_charts_show_the_same_data(both):
    import matplotlib.pyplot as plt

    _, _, frames = both
    old = json.loads((GOLDEN / "charts.json").read_text())
    new = {stem: json.loads(json.dumps(_chart_data(fig)))
           for spec in load_figure_specs() for stem, fig in figures_for(spec, frames)}
    plt.close("all")
    assert set(new) == set(old) and len(old) == 4
    for stem in old:
        assert new[stem] == old[stem], stem
