"""Figures as data: ``conf/figures/*.yaml`` drive the prompt-variance charts (PDF + PNG).

- ``kind: spread``: per relation, P@1 of each paraphrased prompt as dots per prompt set, marks for
  other series (manual bar, P-Tuning star); one full-width figure per model row.
- ``kind: distribution``: per model, box plots of per-relation P@1 for each series; one per variant.
- ``kind: splits`` (records): per column key (e.g. LM-BFF's templates / label words), one dot per
  seed (data split) and the mean with its std, the paper's number as a diamond; groups of keys
  (``sst2:`` | ``snli:``) split by a dashed line; ``grid`` picks each seed's configuration as the
  tables do; one figure per model row.
- ``kind: patterns`` (records, not groups): per task, each pattern's score per model and series
  (:mod:`bench.tables.pattern_figures`); one figure per task.
- ``kind: scale`` (records): a score over tasks against model size, one line per series (Lester et al.'s scale
  and ablation charts, :mod:`bench.tables.scale_figures`); one figure per spec.
Every chart says on its face when all its values are zero or a column has no record
(:mod:`bench.tables.figure_marks`). Colours and labels come from one series file (``conf/figures/rules/series.yaml``) so a method has
the same colour in every figure; sizes fit a two-column paper (7 in full width, 3.3 in a column).
``python -m bench.tables.figures`` rebuilds them all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from bench.tables.builder import prepare  # noqa: E402
from bench.tables.cells import column_of, fill, select  # noqa: E402
from bench.tables.figure_marks import (  # noqa: E402
    draw_paper,
    note_empty,
    paper_label,
    paper_rows,
    published_entries,
    separate_groups,
)
from bench.tables.frame import Frames  # noqa: E402
from bench.tables.spec import FIGURES_DIR, load_rules  # noqa: E402

FULL_WIDTH, COLUMN_WIDTH = 7.0, 3.3  # inches
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "pdf.fonttype": 42, "ps.fonttype": 42, "axes.spines.top": False,
         "axes.spines.right": False}


def load_figure_specs(directory: Path = FIGURES_DIR, only: list[str] | None = None) -> list[dict]:
    specs = []
    for path in sorted(Path(directory).glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if only is not None and spec.get("name") not in only and path.stem not in only:
            continue
        rules = Path(directory) / "rules"
        spec["file"] = str(path)
        spec["study"] = [spec["study"]] if isinstance(spec.get("study"), str) else list(spec.get("study") or [])
        spec["series"] = load_rules(spec.get("series", "series"), path, "series", rules)
        if "column_key" in spec:
            spec["column_key"] = load_rules(spec["column_key"], path, "column_key", FIGURES_DIR.parent / "tables" / "rules")
        spec.setdefault("split", "report")
        spec.setdefault("keep", {})
        spec["source"] = "records" if spec.get("kind") in ("splits", "patterns", "scale") else "groups"
        spec["value"].setdefault("scale", 1)
        specs.append(spec)
    return specs


def _top(values: pd.Series) -> float:
    """Upper y limit in percent: a little above the data, never a degenerate axis (all-zero tiny models)."""
    top = float(values.max()) if len(values) else 0.0
    return min(100.0, max(5.0, top * 1.08))


def _safe(name: str) -> str:
    """File-name form of a row label: ``tiny-gpt2 [smoke]`` -> ``tiny-gpt2_smoke``."""
    name = name.replace(" [", "_").replace("]", "").replace(" (", "_").replace(")", "")
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _relation_order(relation: str) -> int:
    return int(relation[1:]) if relation[1:].isdigit() else 0


def spread_figure(spec: dict, data: pd.DataFrame, row: str):
    """Per relation: dots per paraphrase set, the spec's marks; None when there is nothing to show."""
    data = data[data["row"] == row]
    dots = spec["dots"]
    para = select(data, dots.get("select"))
    para = para[para["set"].isin(dots["sets"])]
    if para.empty:
        return None
    series = spec["series"]
    relations = sorted(data["group"].unique(), key=_relation_order)
    x_of = {r: i for i, r in enumerate(relations)}
    sets = [s for s in dots["sets"] if s in set(para["set"])]
    width = 0.7 / max(len(sets), 1)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=tuple(spec.get("size", (FULL_WIDTH, 2.3))))
        for k, set_name in enumerate(sets):
            part = para[para["set"] == set_name]
            offset = (k - (len(sets) - 1) / 2) * width
            ax.scatter([x_of[r] + offset for r in part["group"]], part["_value"], s=4, alpha=0.6, linewidths=0,
                       color=series[set_name]["colour"], label=series[set_name]["label"])
        for mark in spec.get("marks", []):
            part = select(data, mark["select"]).drop_duplicates("group")
            ax.scatter([x_of[r] for r in part["group"]], part["_value"], marker=mark["marker"], s=mark["size"],
                       linewidths=mark.get("linewidth", 0), color=series[mark["series"]]["colour"],
                       label=series[mark["series"]]["label"], zorder=3 if mark["marker"] == "*" else None)
        ax.set_ylim(0, _top(data["_value"]))
        ax.set_xticks(range(len(relations)), relations, rotation=90)
        ax.set_xlim(-0.7, len(relations) - 0.3)
        ax.set_ylabel("P@1 (%)")
        ax.set_title(fill(spec["title"], {"row": row, "variant": spec["select"].get("variant", "")}))
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False, markerscale=1.5)
        note_empty(ax, data["_value"])
    return fig


def distribution_figure(spec: dict, data: pd.DataFrame, variant: str, paper: pd.DataFrame | None = None):
    """Per model, box plots of per-relation P@1 for each series with our mean over relations (+) and the
    paper's macro P@1 (diamond); None without data."""
    series_conf = spec["series"]
    data = data[data["variant"] == variant]
    data = data.assign(series=[column_of(r, spec["series_key"]) for r in data.to_dict("records")])
    data = data[data["series"].isin(series_conf) & ~data["series"].isin(spec.get("exclude", []))]
    if data.empty:
        return None
    paper = paper if paper is not None else paper_rows(spec, None)
    paper = paper[paper["variant"] == variant]
    conf = (published_entries(spec) or [{}])[0]
    columns_of = {s: conf.get("columns", {}).get(s, [s]) for s in series_conf}
    model_of = dict(zip(data["row"], data["model"], strict=False))
    setting = conf.get("setting") or {}  # a diamond only beside rows of the setting that produced it (LAMA: protocol)
    model_of = {r: None if any(str(data.loc[data["row"] == r, k].iloc[0]) != str(v) for k, v in setting.items()) else m
                for r, m in model_of.items()}
    rows = sorted(data["row"].unique())
    if conf.get("all_models"):
        wanted = {c for s in set(data["series"]) for c in columns_of[s]}
        rows += sorted(m for m in set(paper[paper["column"].isin(wanted)]["model"]) if m not in set(model_of.values()))
    model_of.update({r: r for r in rows if r not in model_of})
    series = [s for s in series_conf if s in set(data["series"])]
    width = 0.8 / len(series)
    figure_width = min(FULL_WIDTH, max(COLUMN_WIDTH, 0.35 * len(rows) * len(series) + 1.0))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(figure_width, 2.2))
        marked = False
        for k, name in enumerate(series):
            colour = series_conf[name]["colour"]
            values = [data[(data["row"] == r) & (data["series"] == name)]["_value"].to_numpy() for r in rows]
            positions = [i + (k - (len(series) - 1) / 2) * width for i in range(len(rows))]
            kept = [(p, v) for p, v in zip(positions, values, strict=True) if len(v)]
            if kept:
                box = ax.boxplot([v for _, v in kept], positions=[p for p, _ in kept], widths=width * 0.85,
                                 patch_artist=True, showfliers=False, medianprops={"color": "black", "linewidth": 0.8},
                                 whiskerprops={"linewidth": 0.6}, capprops={"linewidth": 0.6},
                                 boxprops={"linewidth": 0.6})
                for patch in box["boxes"]:
                    patch.set_facecolor(colour)
                ax.plot([p for p, _ in kept], [float(v.mean()) for _, v in kept], "+", color="black", markersize=4,
                        label="ours: mean" if k == 0 else None, gid="ours-mean")
            hits = [(pos, paper[(paper["model"] == model_of[r]) & paper["column"].isin(columns_of[name])]["value"])
                    for pos, r in zip(positions, rows, strict=True)]
            hits = [(pos, float(v.iloc[0])) for pos, v in hits if len(v)]
            draw_paper(ax, [h[0] for h in hits], [h[1] for h in hits], colour, None)
            marked |= bool(hits)
            ax.plot([], [], "s", color=colour, label=series_conf[name]["label"])
        if marked:
            ax.plot([], [], color="black", label=f"{paper_label(paper)}: macro P@1", marker="D", markersize=3.5,
                    markerfacecolor="white", linestyle="none")
        ax.set_xticks(range(len(rows)), rows, rotation=20 if len(rows) > 4 else 0)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(0, _top(pd.concat([data["_value"], paper["value"].astype(float)]) if marked else data["_value"]))
        ax.set_ylabel("P@1 per relation (%)")
        ax.set_title(fill(spec["title"], {"variant": variant}))
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(ncol=min(len(series) + 2, 4), loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
        note_empty(ax, data["_value"])
    return fig


def splits_figure(spec: dict, data: pd.DataFrame, row: str, paper: pd.DataFrame | None = None):
    """Per column key: a dot per seed, the mean (bar) and mean ± std (line), the paper's number (diamond);
    column groups (``sst2:`` | ``snli:``) split by a dashed line; None without data."""
    data = data[(data["row"] == row) & data["column"].isin(list(spec["columns"]))]
    if data.empty:
        return None
    paper = paper if paper is not None else paper_rows(spec, None)
    have = set(data["column"])
    keys = [k for k in spec["columns"] if k in have or k in set(paper["column"])]
    missing = [spec["columns"][k] for k in keys if k not in have]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=tuple(spec.get("size", (FULL_WIDTH, 2.3))))
        for x, key in enumerate(keys):
            values = data[data["column"] == key]["_value"].dropna()
            if values.empty:
                continue
            ax.scatter([x] * len(values), values, s=8, alpha=0.7, linewidths=0, color="#0072B2",
                       label="one split" if x == 0 else None)
            mean, std = float(values.mean()), float(values.std(ddof=0))  # population std, as the LM-BFF tables
            ax.plot([x - 0.25, x + 0.25], [mean, mean], color="black", linewidth=1.0,
                    label="mean" if x == 0 else None)
            ax.plot([x, x], [mean - std, mean + std], color="#D55E00", linewidth=0.8,
                    label="mean ± std" if x == 0 else None)
        marks = [(x, float(paper[paper["column"] == k]["value"].iloc[0])) for x, k in enumerate(keys)
                 if k in set(paper["column"])]
        draw_paper(ax, [x + 0.3 for x, _ in marks], [v for _, v in marks], "black", paper_label(paper))
        separate_groups(ax, keys, spec.get("groups"))
        ax.set_xticks(range(len(keys)), [spec["columns"][k] for k in keys], rotation=20, ha="right")
        ax.set_xlim(-0.6, len(keys) - 0.4)
        ax.set_ylim(0, 100)
        ax.set_ylabel(spec.get("ylabel", "accuracy (%)"))
        ax.set_title(fill(spec["title"], {"row": row}), pad=12)
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        ax.legend(ncol=4, loc="lower left", frameon=False)
        note_empty(ax, data["_value"], missing)
    return fig


def _grid_picked(spec: dict, data: pd.DataFrame, frames: Frames) -> pd.DataFrame:
    """The records the spec's ``grid`` keeps per (row, column) cell, as the tables keep them."""
    from bench.tables.builder import grid_scores
    from bench.tables.cells import reduce_cell

    if not spec.get("grid") or data.empty:
        return data
    scores, names = grid_scores(spec, frames), set()
    for _, part in data.groupby(["row", "column"], dropna=False):
        names |= set(reduce_cell(part, {}, spec["grid"], scores).records)
    return data[data["name"].isin(names)]


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.pdf", out_dir / f"{stem}.png"]
    for path in paths:
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=300, bbox_inches="tight", pad_inches=0.02)
        tmp.replace(path)
    plt.close(fig)
    return paths


def figures_for(spec: dict, frames: Frames, published: pd.DataFrame | None = None):
    """(file stem, figure) for every figure the spec draws from these records (``published``: the rows of
    ``results/paper/*.csv``, drawn as markers where the spec names them)."""
    paper = paper_rows(spec, published)
    data = prepare(dict(spec), frames)
    if data.empty:
        return
    data = data.assign(row=data["row"] + data["setting"])  # runs under another protocol: their own figure
    if spec["kind"] == "spread":
        for row in sorted(data["row"].unique()):
            fig = spread_figure(spec, data, row)
            if fig is not None:
                yield f"{spec['name']}_{_safe(row)}", fig
    elif spec["kind"] == "splits":
        data = _grid_picked(spec, data, frames)
        for row in sorted(data["row"].unique()):
            fig = splits_figure(spec, data, row, paper)
            if fig is not None:
                yield f"{spec['name']}_{_safe(row)}", fig
    elif spec["kind"] == "distribution":
        for variant in sorted(v for v in data["variant"].dropna().unique()):
            fig = distribution_figure(spec, data, variant, paper)
            if fig is not None:
                yield f"{spec['name']}_{variant}", fig
    elif spec["kind"] == "patterns":
        from bench.tables.pattern_figures import patterns_figure

        for task in sorted(t for t in data["task"].dropna().unique()):
            fig = patterns_figure(spec, data, task, STYLE, paper)
            if fig is not None:
                yield f"{spec['name']}_{task}", fig
    elif spec["kind"] == "scale":  # score vs model size, one line per series (bench.tables.scale_figures)
        from bench.tables.scale_figures import scale_figure

        fig = scale_figure(spec, data, frames.by_name, STYLE, published)
        if fig is not None:
            yield spec["name"], fig
    else:
        raise ValueError(f"{spec.get('name')}: unknown figure kind {spec['kind']!r} "
                         "(spread, distribution, splits, patterns or scale)")


def load_paper(paper_dir: Path | None = None) -> pd.DataFrame | None:
    """Every published number under ``results/paper/*.csv`` (None without any)."""
    from bench.paths import paper_dir as default_paper_dir
    from bench.tables.builder import load_published

    files = sorted(Path(paper_dir or default_paper_dir()).glob("*.csv"))
    return pd.concat([load_published(f) for f in files], ignore_index=True) if files else None


def write_figures(frames: Frames, out_dir: Path, specs: list[dict] | None = None,
                  published: pd.DataFrame | None = None) -> list[Path]:
    written: list[Path] = []
    for spec in specs if specs is not None else load_figure_specs():
        for stem, fig in figures_for(spec, frames, published):
            written += _save(fig, Path(out_dir), stem)
    return written


def main(argv: list[str] | None = None) -> int:
    from bench.tables.__main__ import FilterError, _list, chosen_specs, filtered_frames, parser, unwritable

    args = parser("Rebuild results/figures/ (PDF + PNG) from results/runs/.").parse_args(argv)
    try:
        specs = chosen_specs(args.specs or FIGURES_DIR, _list(args.only), args.study, load_figure_specs)
        frames = filtered_frames(args.results / "runs", _list(args.models), _list(args.tags))
    except FilterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for problem in frames.problems:
        print(f"skipped record {problem}", file=sys.stderr)
    out = args.out or args.results / "figures"
    try:
        written = write_figures(frames, out, specs, load_paper())
    except OSError as err:  # a read-only output folder: one line, not a traceback
        print(unwritable(out, err), file=sys.stderr)
        return 2
    if not written:
        print(f"no records under {args.results / 'runs'} for these figure specs: no figure")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
