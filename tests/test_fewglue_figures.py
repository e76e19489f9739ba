"""The FewGLUE pattern-variance chart plots every repetition of every pattern at its score."""

import pandas as pd
from matplotlib.collections import PathCollection
from tables_fixture import save, sg_record

from bench.tables.figures import figures_for, load_figure_specs
from bench.tables.frame import read_frames


def test_pattern_chart_has_one_point_per_seed_and_pattern(tmp_path):
    runs = tmp_path / "runs"
    for rank, seed, acc in [(0, 42, 0.5), (0, 43, 0.7), (1, 42, 0.6), (1, 43, 0.8)]:
        save(runs, sg_record("rte", "tiny-albert", "pet", "pet_rte", {"accuracy": acc}, rank=rank, seed=seed,
                             preset="fewglue_pet_rte"))
    save(runs, sg_record("rte", "tiny-albert", "ptuning_finetune", "ptuning_rte", {"accuracy": 0.9}, rank=1,
                         preset="fewglue_ptuning_rte"))
    spec = load_figure_specs(only=["fewglue_patterns"])[0]
    figures = dict(figures_for(spec, read_frames(runs)))
    assert list(figures) == ["fewglue_patterns_rte"]
    ax = figures["fewglue_patterns_rte"].axes[0]
    values = sorted(y for c in ax.collections if isinstance(c, PathCollection) for _, y in c.get_offsets().tolist())
    assert values == [50.0, 60.0, 70.0, 80.0, 90.0]  # every pattern x seed of PET, and P-Tuning's run


def test_seeds_and_ranks_of_one_configuration_are_not_a_grid(tmp_path):
    """Records whose hashed config differs only by seed / template.rank reduce to one cell (mean, n);
    a different learning rate is another configuration (marked)."""
    from bench.identity import config_hash
    from bench.tables import build_table, load_specs

    runs = tmp_path / "runs"

    def add(seed, rank, acc, lr=1e-5):
        config = {"seed": seed, "template": {"name": "pet_rte", "rank": rank}, "trainer": {"lr": lr},
                  "task": {}, "model": {}, "method": {"name": "pet"}}
        rec = sg_record("rte", "albert-xxlarge-v2", "pet", "pet_rte", {"accuracy": acc}, seed=seed, rank=rank,
                        config_hash=config_hash(config), preset="fewglue_pet_rte")
        rec["config"] = config
        save(runs, rec)

    add(42, 0, 0.5)
    add(43, 1, 0.7)
    spec = next(s for s in load_specs() if s["name"] == "fewglue_pet")
    table = build_table(spec, read_frames(runs))
    assert table.display.set_index("Model").loc["albert-xxlarge-v2", "RTE Acc"] == "60.0 (14.1)"
    add(44, 0, 0.9, lr=1e-4)
    table = build_table(spec, read_frames(runs))
    assert table.display.set_index("Model").loc["albert-xxlarge-v2", "RTE Acc"].endswith("‡")


def _paper(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([{"table": t, "variant": v, "model": m, "column": c, "value": x, "source": "s",
                          "checked": "yes", "note": ""} for t, v, m, c, x in rows])


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _diamonds(ax) -> list[tuple[float, float]]:
    return [(round(float(x), 3), float(y)) for line in ax.lines if line.get_marker() == "D"
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]


def test_pattern_chart_labels_each_pattern_and_draws_the_paper_beside_ours(tmp_path):
    runs = tmp_path / "runs"
    for rank, seed, acc in [(0, 42, 0.5), (0, 43, 0.7), (1, 42, 0.6), (1, 43, 0.8)]:
        save(runs, sg_record("cb", "tiny-albert", "pet", "pet_cb", {"accuracy": acc, "f1_macro": acc}, rank=rank,
                             seed=seed, preset="fewglue_pet_cb"))
    spec = load_figure_specs(only=["fewglue_patterns"])[0]
    paper = _paper([("fewglue_pet", "pet", "albert-xxlarge-v2", "cb_acc", 85.1),
                    ("fewglue_pet", "pet", "albert-xxlarge-v2", "cb_f1", 59.4),
                    ("fewglue_pet", "pet", "albert-xxlarge-v2", "rte", 69.8)])
    (fig,) = dict(figures_for(spec, read_frames(runs), paper)).values()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tiny-albert", "albert-xxlarge-v2"]  # the paper's row too
    assert sorted(t for t in _texts(ax) if t.startswith("p")) == ["p0", "p1"]
    # CB's score is the mean of accuracy and F1: (85.1 + 59.4) / 2 = 72.25, in the paper model's row (x = 1)
    (mark,) = _diamonds(ax)
    assert mark[1] == 72.25 and 0.5 < mark[0] < 1.5
    assert "paper (albert-xxlarge-v2)" in ax.get_legend_handles_labels()[1]


def test_splits_chart_separates_groups_and_draws_the_paper_numbers(tmp_path):
    from tables_fixture import kshot_record

    runs = tmp_path / "runs"
    for seed, test in ((13, 0.9), (21, 0.8)):
        save(runs, kshot_record("sst2", "tiny-roberta", "pet", "lmbff_sst2", test, 0.5, seed=seed, tag="smoke"))
    save(runs, kshot_record("snli", "tiny-roberta", "pet", "lmbff_snli", 0.4, 0.5, tag="smoke"))
    spec = load_figure_specs(only=["lmbff_splits"])[0]
    paper = _paper([("lmbff_table1", "k16", "roberta-large", "sst2:prompt-r0", 92.7),
                    ("lmbff_table1", "k16", "roberta-large", "snli:prompt-r0", 77.2),
                    ("lmbff_table1", "k16", "roberta-large", "snli:prompt-r5", 60.6)])
    (fig,) = dict(figures_for(spec, read_frames(runs), paper)).values()
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["great/terrible", "<S1>?[MASK],<S2>", "Maybe/No/Yes"]  # ours or the paper's
    assert _diamonds(ax) == [(0.3, 92.7), (1.3, 77.2), (2.3, 60.6)]
    dashed = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    assert dashed == [0.5]  # SST-2 | SNLI
    assert {"SST-2", "SNLI"} <= set(_texts(ax))
    assert any(t.startswith("no record for: Maybe/No/Yes") for t in _texts(ax))


def test_an_all_zero_chart_says_why(tmp_path):
    runs = tmp_path / "runs"
    for rank, seed in [(0, 42), (1, 42)]:
        save(runs, sg_record("rte", "tiny-albert", "pet", "pet_rte", {"accuracy": 0.0}, rank=rank, seed=seed,
                             preset="fewglue_pet_rte"))
    spec = load_figure_specs(only=["fewglue_patterns"])[0]
    (fig,) = dict(figures_for(spec, read_frames(runs))).values()
    assert any(t.startswith("all 2 values are 0 (random-weight tiny models") for t in _texts(fig.axes[0]))
