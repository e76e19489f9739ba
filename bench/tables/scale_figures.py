"""``kind: scale`` (records): a SuperGLUE-style score against model size, one line per series (Lester et al. 2021,
Figures 1 and 3: model size on a log axis; a method, prompt length, initialisation or checkpoint per line).

Each record is a task run; its series comes from ``series_key`` rules whose ``when`` may name dotted config keys
(``method.component.length``, ``model.checkpoint``; a key a record lacks reads as null). ``where`` keeps only the
records whose config values are among the listed ones (null: the key is absent, e.g. the tiny models' checkpoint).
Per series, model row and seed the score is the mean over the ``tasks`` it has; per point the mean and sample std
over seeds (the paper: 3 runs); a point with fewer tasks than listed says "k/N tasks", and a point whose cells hold
several configurations is marked ``‡``. The x of a model: its config's ``model.num_params`` (conf/model), else the
record's counted backbone parameters (``params.total`` minus the method's own modules). ``published``: entries
``{series, table, variant, column}`` of ``results/paper/*.csv``, drawn as white diamonds at the model's
``num_params`` (conf/model). Published points exist only where a source gives the exact number.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from bench.tables.cells import fill, matches
from bench.tables.config_fields import _MISSING, config_value
from bench.tables.figure_marks import draw_paper, note_empty, paper_label, published_entries

COLUMN_WIDTH = 3.3


def _config(record: dict | None, key: str) -> Any:
    value = config_value((record or {}).get("config"), key)
    return None if value is _MISSING else value


def model_params(record: dict) -> float | None:
    """Parameters of the backbone: ``model.num_params`` of the config, else counted in the record."""
    declared = _config(record, "model.num_params")
    if declared is not None:
        return float(declared)
    params = record.get("params") or {}
    if params.get("total") is None:
        return None
    return float(params["total"]) - float(params.get("method_modules") or 0)


def series_of(row: dict, record: dict | None, rules: list[dict]) -> str | None:
    """The first rule whose ``when`` matches (record fields, or dotted config keys) names the series."""
    for rule in rules:
        values = {k: row.get(k) if "." not in k else _config(record, k) for k in (rule.get("when") or {})}
        if all(matches(values[k], v) for k, v in (rule.get("when") or {}).items()):
            return fill(rule["key"], {**row, **{k.replace(".", "_"): v for k, v in values.items()}})
    return None


def scale_points(spec: dict, data: pd.DataFrame, by_name: dict[str, dict]) -> pd.DataFrame:
    """One row per (series, model row, seed): x, the mean score over the tasks present, how many, configurations."""
    tasks = [str(t) for t in spec["tasks"]]
    rows = []
    for row in data.to_dict("records"):
        record = by_name.get(row["name"])
        if not all(matches(_config(record, k), allowed) for k, allowed in (spec.get("where") or {}).items()):
            continue
        series = series_of(row, record, spec["series_key"])
        if series is None or series not in spec["series"] or row["task"] not in tasks or pd.isna(row["_value"]):
            continue
        rows.append({"series": series, "row": row["row"], "model": row["model"], "seed": row["seed"],
                     "task": row["task"], "value": float(row["_value"]), "x": model_params(record or {}),
                     "config": row.get("grid_hash") or row.get("config_hash")})
    columns = ["series", "row", "model", "seed", "x", "value", "n_tasks", "mixed"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    out = []
    for (series, row, seed), part in frame.groupby(["series", "row", "seed"], sort=True):
        per_task = part.groupby("task")
        out.append({"series": series, "row": row, "model": part["model"].iloc[0], "seed": seed,
                    "x": part["x"].dropna().iloc[0] if part["x"].notna().any() else None,
                    "value": float(per_task["value"].mean().mean()), "n_tasks": int(per_task.ngroups),
                    "mixed": bool((per_task["config"].nunique() > 1).any())})
    return pd.DataFrame(out, columns=columns)


def scale_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Per (series, model row): x, mean and sample std over seeds, seeds, the fewest tasks of a seed, ``‡``."""
    out = []
    for (series, row), part in points.groupby(["series", "row"], sort=True):
        values = part["value"].astype(float)
        out.append({"series": series, "row": row, "model": part["model"].iloc[0], "x": part["x"].iloc[0],
                    "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                    "n_seeds": int(len(values)), "n_tasks": int(part["n_tasks"].min()), "mixed": bool(part["mixed"].any())})
    return pd.DataFrame(out, columns=["series", "row", "model", "x", "mean", "std", "n_seeds", "n_tasks", "mixed"])


def published_points(spec: dict, published: pd.DataFrame | None) -> pd.DataFrame:
    """The spec's published points: series, model, x (the model's conf num_params), value, checked."""
    from bench.backbones.configs import load_model_config

    out = []
    if published is not None and not published.empty:
        for entry in published_entries(spec):
            hit = published[(published["table"] == entry["table"]) & (published["variant"] == entry.get("variant"))
                            & (published["column"] == entry["column"])]
            for _, p in hit.iterrows():
                x = (load_model_config(str(p["model"])) or {}).get("num_params")
                if x is not None:
                    out.append({"series": entry["series"], "model": p["model"], "x": float(x),
                                "value": float(p["value"]), "checked": p["checked"]})
    return pd.DataFrame(out, columns=["series", "model", "x", "value", "checked"])


def scale_figure(spec: dict, data: pd.DataFrame, by_name: dict[str, dict], style: dict,
                 published: pd.DataFrame | None = None):
    """The chart: x = parameters (log), per series the mean over seeds with a std band, paper diamonds."""
    summary = scale_summary(scale_points(spec, data, by_name))
    paper = published_points(spec, published)
    if summary.empty and paper.empty:
        return None
    n_tasks = len(spec["tasks"])
    with plt.rc_context(style):
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.4))
        for name, conf in spec["series"].items():
            part = summary[(summary["series"] == name) & summary["x"].notna()].sort_values("x")
            if part.empty:
                continue
            std = part["std"].fillna(0.0).astype(float)
            ax.plot(part["x"], part["mean"], marker="o", markersize=3, linewidth=1, color=conf["colour"],
                    label=conf["label"])
            ax.fill_between(part["x"], part["mean"] - std, part["mean"] + std, color=conf["colour"], alpha=0.2,
                            linewidth=0)
            for p in part.to_dict("records"):
                marks = ("‡" if p["mixed"] else "") + (f" {p['n_tasks']}/{n_tasks} tasks" if p["n_tasks"] < n_tasks else "")
                if marks:
                    ax.annotate(marks.strip(), (p["x"], p["mean"]), xytext=(2, 2), textcoords="offset points",
                                fontsize=4.5, color=conf["colour"])
        for name, part in paper.groupby("series"):
            colour = spec["series"].get(name, {}).get("colour", "black")
            draw_paper(ax, list(part["x"]), list(part["value"]), colour, None)
        if not paper.empty:
            ax.plot([], [], color="black", label=paper_label(paper), marker="D", markersize=3.5,
                    markerfacecolor="white", linestyle="none")
        ax.set_xscale("log")
        xs = [x for x in [*summary["x"].dropna(), *paper["x"]] if x and x > 0]
        if xs:
            ax.set_xlim(min(xs) / 2, max(xs) * 2)
        ax.set_ylim(0, 100)
        ax.set_xlabel(spec.get("xlabel", "model parameters"))
        ax.set_ylabel(spec.get("ylabel", "score (%)"))
        ax.set_title(spec["title"])
        ax.grid(linewidth=0.3, alpha=0.5)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        note_empty(ax, summary["mean"] if not summary.empty else paper["value"])
    return fig
