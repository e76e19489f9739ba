"""What a chart adds beside our points: the published number as a marker, separators between groups of
columns (SST-2 | SNLI), and a visible note when every value is zero or a column has no record.

``published`` in a figure spec: one entry or a list, each ``{table, variant, series}`` (``series``: the
series the number belongs to, patterns charts) naming rows of ``results/paper/*.csv``; a task's number
is the mean of its columns (``cb_acc`` and ``cb_f1`` -> CB's score, as our ``overall.score``).
Distribution charts match a series to the column of its name (``columns: {series: [column, ...]}``
otherwise) and, with ``all_models: true``, add the paper's models that have no record as rows.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pandas as pd

PAPER_MARKER = {"marker": "D", "markersize": 3.5, "markerfacecolor": "white", "markeredgewidth": 0.9,
                "linestyle": "none", "zorder": 4}


def published_entries(spec: dict) -> list[dict]:
    conf = spec.get("published") or []
    return [conf] if isinstance(conf, dict) else list(conf)


def paper_rows(spec: dict, published: pd.DataFrame | None) -> pd.DataFrame:
    """The spec's published rows with a ``series`` column (empty frame without any)."""
    columns = ["table", "variant", "model", "column", "value", "checked", "series"]
    if published is None or published.empty:
        return pd.DataFrame(columns=columns)
    parts = []
    for entry in published_entries(spec):
        part = published[published["table"] == entry["table"]]
        if "variant" in entry:  # without one: every variant (a figure drawn per variant picks its own)
            part = part[part["variant"] == entry["variant"]]
        parts.append(part.assign(series=entry.get("series")))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def task_value(rows: pd.DataFrame, task: str) -> tuple[float | None, bool]:
    """The paper's number for a task: the mean of its columns (``task`` or ``task_<metric>``); checked flag."""
    hit = rows[(rows["column"] == task) | rows["column"].astype(str).str.startswith(f"{task}_")]
    if hit.empty:
        return None, True
    return float(hit["value"].astype(float).mean()), bool((hit["checked"] == "yes").all())


def paper_label(rows: pd.DataFrame) -> str:
    models = sorted(set(rows["model"].astype(str)))
    star = "" if (rows["checked"] == "yes").all() else "*"
    return f"paper{star} ({', '.join(models)})" if models else "paper"


def draw_paper(ax, xs: list[float], ys: list[float], colour: str, label: str | None) -> None:
    if xs:
        ax.plot(xs, ys, color=colour, markeredgecolor=colour, label=label, gid="paper", **PAPER_MARKER)


def separate_groups(ax, keys: list[str], names: dict[str, str] | None) -> None:
    """A dashed line between column groups (the part of a key before ``:``) and each group's name above it."""
    groups = [str(k).split(":")[0] for k in keys]
    starts = [i for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]
    for i in starts[1:]:
        ax.axvline(i - 0.5, color="black", linewidth=0.6, linestyle="--")
    if len(starts) > 1 or names:
        ends = starts[1:] + [len(groups)]
        for start, end in zip(starts, ends, strict=True):
            ax.text((start + end - 1) / 2, 1.01, (names or {}).get(groups[start], groups[start]),
                    transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7, fontweight="bold")


def note_empty(ax, values: Any, missing: list[str] | None = None) -> str | None:
    """Write on the chart why it shows nothing useful: every value zero, or columns without records."""
    series = pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna()
    notes = []
    if series.empty:
        notes.append("no value to plot")
    elif (series == 0).all():
        notes.append(f"all {len(series)} values are 0 (random-weight tiny models score about zero by construction)")
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        notes.append(f"no record for: {shown}")
    if not notes:
        return None
    text = "\n".join(textwrap.fill(n, 70) for n in notes)
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=6, color="#B00000",
            bbox={"facecolor": "white", "edgecolor": "#B00000", "linewidth": 0.5, "alpha": 0.9})
    return text
