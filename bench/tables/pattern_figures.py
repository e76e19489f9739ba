"""``kind: patterns``: per task, the score of every prompt pattern (rank) per model row and series, as dots
(one per pattern x seed) with a bar at each pattern's mean; the spread shows how much the pattern matters."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from bench.tables.cells import column_of, fill

COLUMN_WIDTH = 3.3


def patterns_figure(spec: dict, data: pd.DataFrame, task: str, style: dict):
    """One task: x = model row, per series dots per (rank, seed) and a bar per rank mean; None without data."""
    data = data[data["task"] == task]
    data = data.assign(series=[column_of(r, spec["series_key"]) for r in data.to_dict("records")])
    series_conf = spec["series"]
    data = data[data["series"].isin(series_conf)]
    if data.empty:
        return None
    rows = sorted(data["row"].unique())
    series = [s for s in series_conf if s in set(data["series"])]
    width = 0.8 / len(series)
    with plt.rc_context(style):
        fig, ax = plt.subplots(figsize=(max(COLUMN_WIDTH, 0.9 * len(rows) * len(series) + 1.0), 2.2))
        for k, name in enumerate(series):
            colour = series_conf[name]["colour"]
            for i, row in enumerate(rows):
                part = data[(data["row"] == row) & (data["series"] == name)]
                if part.empty:
                    continue
                x = i + (k - (len(series) - 1) / 2) * width
                ranks = sorted(part["rank"].fillna(0).unique())
                for j, rank in enumerate(ranks):
                    values = part[part["rank"].fillna(0) == rank]["_value"]
                    dx = x + (j - (len(ranks) - 1) / 2) * width / max(len(ranks), 1) * 0.8
                    ax.scatter([dx] * len(values), values, s=5, color=colour, linewidths=0, alpha=0.7)
                    ax.plot([dx - 0.03, dx + 0.03], [values.mean()] * 2, color="black", linewidth=0.8)
            ax.plot([], [], "o", color=colour, label=series_conf[name]["label"])
        ax.set_xticks(range(len(rows)), rows)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(0, 100)
        ax.set_ylabel(spec.get("ylabel", "score (%)"))
        ax.set_title(fill(spec["title"], {"task": task}))
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(ncol=min(len(series), 4), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    return fig
