"""Prompt-variance charts from run records only (PDF + PNG under ``results/figures/``).

- ``prompt_spread_<model>``: per relation, P@1 of every paraphrased prompt (ParaRel, LPAQA
  paraphrases) as dots, the manual prompt as a bar and P-Tuning as a star (full-width figure).
- ``p_at_1_by_prompt_set_<variant>``: per model, the distribution of per-relation P@1 for each
  prompt set / method (box plots; paraphrase sets pool relations x prompts).
Colours are fixed per method / prompt set (Okabe-Ito, colour-blind safe) across every figure;
sizes fit a two-column paper (7 in wide for full width, 3.3 in for one column, 7 pt text).
``python -m bench.plots`` rebuilds them all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.aggregate.lama_tables import column_of  # noqa: E402
from bench.aggregate.sensitivity import PARAPHRASE_SETS, prompt_frame  # noqa: E402
from bench.paths import results_dir  # noqa: E402

COLOURS = {"lama": "#0072B2", "lpaqa": "#56B4E9", "autoprompt": "#009E73", "pararel": "#E69F00",
           "lpaqa_paraphrase": "#CC79A7", "ptuning": "#D55E00", "lm_finetune": "#999999", "lm_finetune+lama": "#000000",
           "p17_sensitivity": "#F0E442"}
LABELS = {"lama": "Manual (LAMA)", "lpaqa": "LPAQA", "autoprompt": "AutoPrompt", "pararel": "ParaRel paraphrases",
          "lpaqa_paraphrase": "LPAQA paraphrases", "ptuning": "P-Tuning", "lm_finetune": "FT", "lm_finetune+lama": "MP+FT",
          "p17_sensitivity": "Table 1 prompts"}
SERIES_ORDER = list(COLOURS)
FULL_WIDTH, COLUMN_WIDTH = 7.0, 3.3  # inches
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "pdf.fonttype": 42, "ps.fonttype": 42, "axes.spines.top": False,
         "axes.spines.right": False}


def series_of(column: str) -> str:
    """Colour / legend key of a table column (AutoPrompt's two sets share one colour)."""
    return "autoprompt" if column.startswith("autoprompt") else column


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.pdf", out_dir / f"{stem}.png"]
    for path in paths:
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=300, bbox_inches="tight", pad_inches=0.02)
        tmp.replace(path)
    plt.close(fig)
    return paths


def _top(values: pd.Series) -> float:
    """Upper y limit in percent: a little above the data, never a degenerate axis (all-zero tiny models)."""
    top = float(values.max()) if len(values) else 0.0
    return min(100.0, max(5.0, top * 1.08))


def _safe(name: str) -> str:
    """File-name form of a row label: ``tiny-gpt2 [smoke]`` -> ``tiny-gpt2_smoke``."""
    name = name.replace(" [", "_").replace("]", "")
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def spread_figure(prompts: pd.DataFrame, row: str, variant: str = "lama34k"):
    """Per relation: paraphrase dots per set, manual bar, P-Tuning star; None when there is nothing to show."""
    data = prompts[(prompts["row"] == row) & (prompts["variant"] == variant)]
    para = data[(data["method"] == "manual") & data["set"].isin(PARAPHRASE_SETS)]
    if para.empty:
        return None
    relations = sorted(data["relation"].unique(), key=lambda r: int(r[1:]) if r[1:].isdigit() else 0)
    x_of = {r: i for i, r in enumerate(relations)}
    sets = [s for s in PARAPHRASE_SETS if s in set(para["set"])]
    width = 0.7 / max(len(sets), 1)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(FULL_WIDTH, 2.3))
        for k, set_name in enumerate(sets):
            part = para[para["set"] == set_name]
            offset = (k - (len(sets) - 1) / 2) * width
            ax.scatter([x_of[r] + offset for r in part["relation"]], part["p_at_1"], s=4, alpha=0.6, linewidths=0,
                       color=COLOURS[set_name], label=LABELS[set_name])
        manual = data[(data["column"] == "lama")].drop_duplicates("relation")
        ax.scatter([x_of[r] for r in manual["relation"]], manual["p_at_1"], marker="_", s=60, linewidths=1.2,
                   color=COLOURS["lama"], label=LABELS["lama"])
        tuned = data[data["column"] == "ptuning"].drop_duplicates("relation")
        ax.scatter([x_of[r] for r in tuned["relation"]], tuned["p_at_1"], marker="*", s=22, linewidths=0,
                   color=COLOURS["ptuning"], label=LABELS["ptuning"], zorder=3)
        ax.set_ylim(0, _top(data["p_at_1"]))
        ax.set_xticks(range(len(relations)), relations, rotation=90)
        ax.set_xlim(-0.7, len(relations) - 0.3)
        ax.set_ylabel("P@1 (%)")
        ax.set_title(f"{row}: P@1 per relation over paraphrased prompts ({variant}, test)")
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False, markerscale=1.5)
    return fig


def distribution_figure(prompts: pd.DataFrame, variant: str):
    """Per model, box plots of per-relation P@1 for each prompt set / method; None without data."""
    data = prompts[prompts["variant"] == variant]
    data = data.assign(series=[series_of(column_of(m, s)) for m, s in zip(data["method"], data["set"], strict=True)])
    data = data[data["series"].isin(COLOURS) & (data["series"] != "p17_sensitivity")]  # P17 only: not a spread
    if data.empty:
        return None
    rows = sorted(data["row"].unique())
    series = [s for s in SERIES_ORDER if s in set(data["series"])]
    width = 0.8 / len(series)
    figure_width = min(FULL_WIDTH, max(COLUMN_WIDTH, 0.35 * len(rows) * len(series) + 1.0))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(figure_width, 2.2))
        for k, name in enumerate(series):
            values = [data[(data["row"] == r) & (data["series"] == name)]["p_at_1"].to_numpy() for r in rows]
            positions = [i + (k - (len(series) - 1) / 2) * width for i in range(len(rows))]
            kept = [(p, v) for p, v in zip(positions, values, strict=True) if len(v)]
            if not kept:
                continue
            box = ax.boxplot([v for _, v in kept], positions=[p for p, _ in kept], widths=width * 0.85,
                             patch_artist=True, showfliers=False, medianprops={"color": "black", "linewidth": 0.8},
                             whiskerprops={"linewidth": 0.6}, capprops={"linewidth": 0.6},
                             boxprops={"linewidth": 0.6})
            for patch in box["boxes"]:
                patch.set_facecolor(COLOURS[name])
            ax.plot([], [], "s", color=COLOURS[name], label=LABELS[name])
        ax.set_xticks(range(len(rows)), rows)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(0, _top(data["p_at_1"]))
        ax.set_ylabel("P@1 per relation (%)")
        ax.set_title(f"P@1 over prompt sets ({variant}, test)")
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(ncol=min(len(series), 4), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    return fig


def write_figures(runs_dir: Path, out_dir: Path) -> list[Path]:
    prompts = prompt_frame(runs_dir)
    written: list[Path] = []
    if prompts.empty:
        return written
    for row in sorted(prompts["row"].unique()):
        fig = spread_figure(prompts, row)
        if fig is not None:
            written += _save(fig, out_dir, f"prompt_spread_{_safe(row)}")
    for variant in sorted(v for v in prompts["variant"].dropna().unique()):
        fig = distribution_figure(prompts, variant)
        if fig is not None:
            written += _save(fig, out_dir, f"p_at_1_by_prompt_set_{variant}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild results/figures/ from results/runs/.")
    parser.add_argument("--results", type=Path, default=results_dir(), help="results folder (runs/ inside)")
    parser.add_argument("--out", type=Path, default=None, help="figures folder (default: <results>/figures)")
    args = parser.parse_args(argv)
    written = write_figures(args.results / "runs", args.out or args.results / "figures")
    if not written:
        print(f"no LAMA records with per-relation P@1 under {args.results / 'runs'}: no figure")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
