"""Render a built table as Markdown, LaTeX (booktabs; compiles: every special character escaped or a
macro) and tidy CSV."""

from __future__ import annotations

from pathlib import Path

from bench.io_utils import atomic_write_text
from bench.tables.builder import Table

_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
            "Δ": r"$\Delta$", "†": r"$^\dagger$", "‡": r"$^\ddagger$", "*": r"$^*$", "—": "---", "–": "--",
            "−": "$-$", "×": r"$\times$", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
            "±": r"$\pm$", "[": "{[}", "]": "{]}", "…": r"\dots{}", "’": "'", "‘": "`", "“": "``", "”": "''"}


def latex_escape(text: object) -> str:
    """LaTeX-safe text: special characters escaped, marks as math macros, brackets braced (a row that
    starts with ``[X]`` would read as the optional argument of the previous ``\\``)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def to_markdown(table: Table) -> str:
    frame = table.display
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    parts = [f"### {table.title}", "", header, rule, *body]
    if table.notes:
        parts += ["", *[f"- {note}" for note in table.notes]]
    return "\n".join(parts) + "\n"


def to_latex(table: Table) -> str:
    """A ``table`` (``table*`` when wide) with booktabs rules, the caption and the notes below."""
    frame = table.display
    env = "table*" if table.wide else "table"
    n_labels = table.n_labels
    align = "l" * n_labels + "r" * (len(frame.columns) - n_labels)
    lines = [rf"\begin{{{env}}}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize"]
        lines += [latex_escape(note) + r"\\" for note in table.notes]
        lines.append("}")
    lines += [rf"\caption{{{latex_escape(table.title)}}}", rf"\label{{{table.label}}}", rf"\end{{{env}}}"]
    return "\n".join(lines) + "\n"


def write_table(table: Table, out_dir: Path) -> list[Path]:
    """``<name>.md``, ``<name>.tex`` (from the display frame) and ``<name>.csv`` (tidy, numeric)."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{table.name}.{ext}" for ext in ("md", "tex", "csv")]
    atomic_write_text(paths[0], to_markdown(table))
    atomic_write_text(paths[1], to_latex(table))
    atomic_write_text(paths[2], table.tidy.to_csv(index=False))
    return paths
