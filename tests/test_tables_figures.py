"""Charts from figure specs: PDF + PNG, one colour per method in every figure, built from records only."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
from tables_fixture import record, save

from bench.tables import read_frames
from bench.tables.figures import FULL_WIDTH, figures_for, load_figure_specs, write_figures


def _runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for model in ("tiny-bert", "tiny-gpt2"):
        for rank in range(3):
            suffix = f"-r{rank}" if rank else ""
            save(runs, record("lama", model, "manual", f"pararel{suffix}",
                              {"P17": 0.1 * rank, "P19": 0.2, "P1001": 0.05 * rank}))
            save(runs, record("lama", model, "manual", f"lpaqa_paraphrase{suffix}", {"P17": 0.3, "P19": 0.1 * rank}))
        save(runs, record("lama", model, "manual", "lama", {"P17": 0.2, "P19": 0.3, "P1001": 0.1}))
        save(runs, record("lama", model, "ptuning", "ptuning_lama", {"P17": 0.6, "P19": 0.5, "P1001": 0.4}))
    return runs


def _rgb(colour) -> tuple:
    return tuple(round(float(c), 3) for c in mcolors.to_rgba(colour)[:3])


def test_figures_are_written_as_pdf_and_png(tmp_path):
    written = write_figures(read_frames(_runs(tmp_path)), tmp_path / "figures")
    assert sorted(p.name for p in written) == [
        "p_at_1_by_prompt_set_lama34k.pdf", "p_at_1_by_prompt_set_lama34k.png", "prompt_spread_tiny-bert.pdf",
        "prompt_spread_tiny-bert.png", "prompt_spread_tiny-gpt2.pdf", "prompt_spread_tiny-gpt2.png"]
    for path in written:
        head = path.read_bytes()[:8]
        assert head.startswith(b"%PDF") if path.suffix == ".pdf" else head == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "figures").glob(".*"))


def test_no_records_no_figures(tmp_path):
    (tmp_path / "runs").mkdir()
    assert write_figures(read_frames(tmp_path / "runs"), tmp_path / "figures") == []


def test_each_method_has_the_same_colour_in_every_figure(tmp_path):
    specs = {s["name"]: s for s in load_figure_specs()}
    colours = specs["prompt_spread"]["series"]
    frames = read_frames(_runs(tmp_path))
    figs = dict(figures_for(specs["prompt_spread"], frames))
    spread = figs["prompt_spread_tiny-bert"]
    spread_colours = {c.get_label(): _rgb(c.get_facecolor()[0]) for c in spread.axes[0].collections}
    for key in ("ptuning", "pararel", "lama"):
        assert spread_colours[colours[key]["label"]] == _rgb(colours[key]["colour"])
    stars = next(c for c in spread.axes[0].collections if c.get_label() == "P-Tuning")
    assert sorted(y for _, y in stars.get_offsets()) == [40.0, 50.0, 60.0]
    (dist,) = dict(figures_for(specs["p_at_1_by_prompt_set"], frames)).values()
    handles, labels = dist.axes[0].get_legend_handles_labels()
    dist_colours = {label: _rgb(h.get_color()) for h, label in zip(handles, labels, strict=True)}
    for label in ("P-Tuning", "ParaRel paraphrases", "Manual (LAMA)"):
        assert dist_colours[label] == spread_colours[label]
    assert dist_colours["LPAQA paraphrases"] == _rgb(colours["lpaqa_paraphrase"]["colour"])
    boxes = [p for p in dist.axes[0].patches if p.get_facecolor()[:3] == mcolors.to_rgb(colours["ptuning"]["colour"])]
    assert len(boxes) == 2  # one P-Tuning box per model
    assert spread.get_size_inches()[0] == FULL_WIDTH and dist.get_size_inches()[0] <= FULL_WIDTH


def test_distribution_shows_our_mean_and_the_papers_number_whatever_models_ran(tmp_path):
    import pandas as pd

    runs = tmp_path / "runs"
    save(runs, record("lama", "tiny-bert", "manual", "lama", {"P17": 0.2, "P19": 0.4}))
    save(runs, record("lama", "tiny-bert", "ptuning", "ptuning_lama", {"P17": 0.0, "P19": 0.1}))
    paper = pd.DataFrame([{"table": "lama", "variant": "lama34k", "model": "bert-base-cased", "column": c,
                           "value": v, "source": "s", "checked": "yes", "note": ""}
                          for c, v in (("lama", 31.1), ("ptuning", 48.3), ("autoprompt_bert", 43.3))])
    spec = {s["name"]: s for s in load_figure_specs()}["p_at_1_by_prompt_set"]
    (fig,) = dict(figures_for(spec, read_frames(runs), paper)).values()
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tiny-bert", "bert-base-cased"]  # the paper's model too
    means = sorted(float(y) for line in ax.lines if line.get_gid() == "ours-mean" for y in line.get_ydata())
    assert means == [5.0, 30.0]  # (0 + 10) / 2 and (20 + 40) / 2
    diamonds = sorted((round(float(x)), float(y)) for line in ax.lines if line.get_gid() == "paper"
                      for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True))
    assert diamonds == [(1, 31.1), (1, 48.3)]  # AutoPrompt has no series here: no diamond
    assert "paper (bert-base-cased): macro P@1" in ax.get_legend_handles_labels()[1]
