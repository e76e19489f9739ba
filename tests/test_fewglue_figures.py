"""The FewGLUE pattern-variance chart plots every repetition of every pattern at its score."""

from matplotlib.collections import PathCollection
from tables_fixture import save, sg_record

from bench.tables.figures import figures_for, load_figure_specs
from bench.tables.frame import read_frames


def test_pattern_chart_has_one_point_per_seed_and_pattern(tmp_path):
    runs = tmp_path / "runs"
    for rank, seed, acc in [(0, 42, 0.5), (0, 43, 0.7), (1, 42, 0.6), (1, 43, 0.8)]:
        save(runs, sg_record("rte", "tiny-albert", "pet", "pet_rte", {"accuracy": acc}, rank=rank, seed=seed))
    save(runs, sg_record("rte", "tiny-albert", "ptuning_finetune", "ptuning_rte", {"accuracy": 0.9}, rank=1))
    spec = load_figure_specs(only=["fewglue_patterns"])[0]
    figures = dict(figures_for(spec, read_frames(runs)))
    assert list(figures) == ["fewglue_patterns_rte"]
    ax = figures["fewglue_patterns_rte"].axes[0]
    values = sorted(y for c in ax.collections if isinstance(c, PathCollection) for _, y in c.get_offsets().tolist())
    assert values == [50.0, 60.0, 70.0, 80.0, 90.0]  # every pattern x seed of PET, and P-Tuning's run
