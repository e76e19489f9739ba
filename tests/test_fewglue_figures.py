"""The FewGLUE pattern-variance chart plots every repetition of every pattern at its score."""

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
