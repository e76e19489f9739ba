"""``kind: patterns``: per task, the score of every prompt pattern (rank) per model row and series, as dots
(one per pattern x seed) with a bar at each pattern's mean labelled ``p<rank>``; the spread shows how much the
pattern matters. The paper's number of a series is a diamond beside it, in the paper model's row (added when
no record of that model exists)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from bench.tables.cells import column_of, fill
from bench.tables.figure_marks import draw_paper, note_empty, paper_label, task_value

COLUMN_WIDTH = 3.3


def patterns_figure(spec: dict, data: pd.DataFrame, task: str, style: dict, paper: pd.DataFrame | None = None):
    """One task: x = model row, per series dots per (rank, seed), a labelled bar per rank mean and the paper's
    number; None without data."""
    data = data[data["task"] == task]
    data = data.assign(series=[column_of(r, spec["series_key"]) for r in data.to_dict("records")])
    series_conf = spec["series"]
    data = data[data["series"].isin(series_conf)]
    if data.empty:
        return None
    paper = paper if paper is not None else pd.DataFrame(columns=["model", "column", "value", "checked", "series"])
    paper = paper[paper["series"].isin(set(data["series"]))]
    paper_here = [m for m in sorted(set(paper["model"])) if task_value(paper[paper["model"] == m], task)[0] is not None]
    model_of = dict(zip(data["row"], data["model"], strict=False))
    rows = sorted(data["row"].unique()) + [m for m in paper_here if m not in set(model_of.values())]
    model_of.update({m: m for m in rows if m not in model_of})
    series = [s for s in series_conf if s in set(data["series"])]
    width = 0.8 / len(series)
    with plt.rc_context(style):
        fig, ax = plt.subplots(figsize=(max(COLUMN_WIDTH, 0.9 * len(rows) * len(series) + 1.0), 2.2))
        labelled = False
        for k, name in enumerate(series):
            colour = series_conf[name]["colour"]
            for i, row in enumerate(rows):
                x = i + (k - (len(series) - 1) / 2) * width
                part = data[(data["row"] == row) & (data["series"] == name)]
                ranks = sorted(part["rank"].fillna(0).unique())
                for j, rank in enumerate(ranks):
                    values = part[part["rank"].fillna(0) == rank]["_value"]
                    dx = x + (j - (len(ranks) - 1) / 2) * width / max(len(ranks), 1) * 0.8
                    ax.scatter([dx] * len(values), values, s=5, color=colour, linewidths=0, alpha=0.7)
                    ax.plot([dx - 0.03, dx + 0.03], [values.mean()] * 2, color="black", linewidth=0.8)
                    if len(ranks) > 1:  # which pattern each cluster is
                        ax.annotate(f"p{int(rank)}", (dx, values.max()), xytext=(0, 2), textcoords="offset points",
                                    ha="center", va="bottom", fontsize=4.5, color=colour)
                mine = paper[(paper["series"] == name) & (paper["model"] == model_of[row])]
                value, _ = task_value(mine, task)
                if value is not None:
                    draw_paper(ax, [x + width * 0.45], [value], colour, None)
                    labelled = True
            ax.plot([], [], "o", color=colour, label=series_conf[name]["label"])
        if labelled:
            ax.plot([], [], color="black", markeredgecolor="black", label=paper_label(paper), marker="D",
                    markersize=3.5, markerfacecolor="white", linestyle="none")
        ax.set_xticks(range(len(rows)), rows)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(0, 100)
        ax.set_ylabel(spec.get("ylabel", "score (%)"))
        ax.set_title(fill(spec["title"], {"task": task}) + "; pN: pattern N")
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(ncol=min(len(series) + labelled, 4), loc="upper center", bbox_to_anchor=(0.5, -0.12),
                  frameon=False)
        note_empty(ax, data["_value"])
    return fig
