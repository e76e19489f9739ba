"""Prompt-variance charts: built from records only, PDF + PNG, one colour per method in every figure."""

from pathlib import Path

import matplotlib.colors as mcolors

from bench.aggregate.sensitivity import prompt_frame
from bench.plots import COLOURS, FULL_WIDTH, distribution_figure, spread_figure, write_figures
from bench.records import RunSpec, record_path, write_record


def _record(runs: Path, model: str, method: str, template: str, p_at_1: dict[str, float]) -> None:
    spec = RunSpec("lama", model, method, template, 34, variant="lama34k")
    groups = {r: {"n": 10, "hits": round(10 * p), "p_at_1": p} for r, p in p_at_1.items()}
    metrics = {"test": {"overall": {"macro_over_relations": 0.5, "pooled": 0.5}, "groups": groups}}
    write_record(record_path(runs, spec), spec, {"metrics": metrics, "selection_split": "dev", "report_split": "test"})


def _runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for model in ("tiny-bert", "tiny-gpt2"):
        for rank in range(3):
            suffix = f"-r{rank}" if rank else ""
            _record(runs, model, "manual", f"pararel{suffix}", {"P17": 0.1 * rank, "P19": 0.2, "P1001": 0.05 * rank})
            _record(runs, model, "manual", f"lpaqa_paraphrase{suffix}", {"P17": 0.3, "P19": 0.1 * rank})
        _record(runs, model, "manual", "lama", {"P17": 0.2, "P19": 0.3, "P1001": 0.1})
        _record(runs, model, "ptuning", "ptuning_lama", {"P17": 0.6, "P19": 0.5, "P1001": 0.4})
    return runs


def _rgba(colour) -> tuple:
    """RGB only: paraphrase dots are drawn half-transparent."""
    return tuple(round(float(c), 3) for c in mcolors.to_rgba(colour)[:3])


def test_figures_are_written_as_pdf_and_png(tmp_path):
    written = write_figures(_runs(tmp_path), tmp_path / "figures")
    names = sorted(p.name for p in written)
    assert names == ["p_at_1_by_prompt_set_lama34k.pdf", "p_at_1_by_prompt_set_lama34k.png",
                     "prompt_spread_tiny-bert.pdf", "prompt_spread_tiny-bert.png",
                     "prompt_spread_tiny-gpt2.pdf", "prompt_spread_tiny-gpt2.png"]
    for path in written:
        head = path.read_bytes()[:8]
        assert head.startswith(b"%PDF") if path.suffix == ".pdf" else head == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "figures").glob(".*"))  # no temporary files left behind


def test_no_records_no_figures(tmp_path):
    (tmp_path / "runs").mkdir()
    assert write_figures(tmp_path / "runs", tmp_path / "figures") == []


def test_each_method_has_the_same_colour_in_every_figure(tmp_path):
    prompts = prompt_frame(_runs(tmp_path))
    spread = spread_figure(prompts, "tiny-bert")
    spread_colours = {c.get_label(): _rgba(c.get_facecolor()[0]) for c in spread.axes[0].collections}
    assert spread_colours["P-Tuning"] == _rgba(COLOURS["ptuning"])
    assert spread_colours["ParaRel paraphrases"] == _rgba(COLOURS["pararel"])
    assert spread_colours["Manual (LAMA)"] == _rgba(COLOURS["lama"])
    # P-Tuning is marked once per relation, at its P@1
    stars = next(c for c in spread.axes[0].collections if c.get_label() == "P-Tuning")
    assert sorted(y for _, y in stars.get_offsets()) == [40.0, 50.0, 60.0]
    dist = distribution_figure(prompts, "lama34k")
    handles, labels = dist.axes[0].get_legend_handles_labels()
    dist_colours = {label: _rgba(h.get_color()) for h, label in zip(handles, labels, strict=True)}
    for label in ("P-Tuning", "ParaRel paraphrases", "Manual (LAMA)", "LPAQA paraphrases"):
        assert dist_colours[label] == spread_colours.get(label, dist_colours[label])
    assert dist_colours["LPAQA paraphrases"] == _rgba(COLOURS["lpaqa_paraphrase"])
    boxes = [p for p in dist.axes[0].patches if p.get_facecolor()[:3] == mcolors.to_rgb(COLOURS["ptuning"])]
    assert len(boxes) == 2  # one P-Tuning box per model
    assert spread.get_size_inches()[0] == FULL_WIDTH and dist.get_size_inches()[0] <= FULL_WIDTH
