"""Write a table frame as Markdown, LaTeX (booktabs) and CSV; small and dependency-free."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.io_utils import atomic_write_text

_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def fmt(value, digits: int = 1, signed: bool = False) -> str:
    """Numbers with fixed digits; missing values as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int | float):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def to_markdown(frame: pd.DataFrame, title: str | None = None, notes: list[str] | None = None) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    parts = ([f"### {title}", ""] if title else []) + [header, rule, *body]
    if notes:
        parts += ["", *[f"- {note}" for note in notes]]
    return "\n".join(parts) + "\n"


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(frame: pd.DataFrame, caption: str | None = None, label: str | None = None,
             notes: list[str] | None = None) -> str:
    align = "l" + "r" * (len(frame.columns) - 1)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    if notes:
        lines = [f"% {note}" for note in notes] + lines
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path, stem: str, display: pd.DataFrame, tidy: pd.DataFrame, title: str,
                notes: list[str] | None = None) -> list[Path]:
    """Markdown and LaTeX from the display frame, CSV from the tidy (numeric, long) frame."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}.md", out_dir / f"{stem}.tex", out_dir / f"{stem}.csv"]
    atomic_write_text(paths[0], to_markdown(display, title, notes))
    atomic_write_text(paths[1], to_latex(display, caption=title, label=f"tab:{stem}", notes=notes))
    atomic_write_text(paths[2], tidy.to_csv(index=False))
    return paths
