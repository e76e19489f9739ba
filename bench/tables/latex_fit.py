"""Fit a table to a paper's ``\\linewidth``: estimate column widths from Computer Modern metrics, stack
column blocks that fit (the label columns repeated in each), and name the LaTeX packages a table needs.

No LaTeX runs at build time, so widths are estimates (cmr10 advance widths scaled to ``\\small``, with a
margin); every block is also wrapped in a shrink-only ``\\resizebox`` so an underestimate never overflows.
``fit`` in a spec: ``blocks`` (default), ``resize`` (one tabular scaled to the line) or ``landscape``
(``sidewaystable``, blocks as wide as the text height).
"""

from __future__ import annotations

import re

FITS = ("blocks", "resize", "landscape")
LINEWIDTH_PT = 345.0  # \textwidth of a 10pt article; a two-column paper's table* is wider (455-505 pt)
LANDSCAPE_PT = 550.0  # \textheight of a 10pt article (sidewaystable's line)
TABCOLSEP_PT = 6.0  # LaTeX default, each side of a column
SCALE = 0.9 * 1.06  # \small in a 10pt document (9 pt) from 10-pt widths, +6% margin
# cmr10 advance widths in pt (Knuth's Computer Modern metrics); anything else counts as 5.0
_WIDTHS = {**dict.fromkeys("0123456789", 5.0), **dict.fromkeys("ilj.,:;'!|[]`", 2.78),
           **dict.fromkeys("ftr-()/?", 3.6), **dict.fromkeys("cesz", 4.2), **dict.fromkeys("aovxyk", 5.1),
           **dict.fromkeys("bdhnpqu", 5.56), "m": 8.33, "w": 7.22, " ": 3.33, "%": 8.33, "_": 5.0, "&": 7.78,
           "*": 5.0, "§": 4.5, "†": 4.5, "‡": 4.5, "Δ": 8.33, "—": 10.0, "–": 5.0, "−": 7.78, "×": 7.78, "±": 7.78, "+": 7.78,
           "=": 7.78, "<": 7.78, ">": 7.78, "I": 3.61, "J": 5.14, "M": 9.17, "W": 10.28, "S": 5.56}
_UPPER = 7.6


def text_width(text: str) -> float:
    """Estimated width in pt of ``text`` set in ``\\small`` Computer Modern (upper-case letters 7.6 pt)."""
    total = 0.0
    for ch in str(text):
        total += _WIDTHS.get(ch, _UPPER if ch.isupper() else 5.0)
    return total * SCALE


def header_lines(header: str) -> list[str]:
    """A header broken where it reads naturally: after ``group:``, before ``(paper)`` and ``Δ``."""
    parts = re.split(r"(?<=:) | (?=\()| (?=Δ$)", str(header))
    return [p for p in parts if p]


def column_width(header: str, cells: list[str]) -> float:
    """A column's estimated width: its widest header line or cell, plus the column separation."""
    widest = max([text_width(line) for line in header_lines(header)] + [text_width(c) for c in cells])
    return widest + 2 * TABCOLSEP_PT


def units(headers: list[str], n_labels: int) -> list[list[int]]:
    """Value columns in units that stay together: a column with its ``(paper)`` and ``Δ`` companions."""
    out: list[list[int]] = []
    for i in range(n_labels, len(headers)):
        h = headers[i]
        if out and any(h == f"{headers[out[-1][0]]}{suffix}" for suffix in (" (paper)", " Δ")):
            out[-1].append(i)
        else:
            out.append([i])
    return out


def blocks(headers: list[str], rows: list[list[str]], n_labels: int, width_pt: float) -> list[list[int]]:
    """Column indices of each block (labels first): value units packed greedily while the estimate fits;
    a unit wider than the line gets a block of its own (the shrink-only resize then fits it)."""
    widths = [column_width(h, [str(r[i]) for r in rows]) for i, h in enumerate(headers)]
    label_width = sum(widths[:n_labels])
    out: list[list[int]] = []
    current: list[int] = []
    used = label_width
    for unit in units(headers, n_labels):
        need = sum(widths[i] for i in unit)
        if current and used + need > width_pt:
            out.append(current)
            current, used = [], label_width
        current += unit
        used += need
    if current or not out:
        out.append(current)
    return [list(range(n_labels)) + block for block in out]


def packages(fit: str) -> list[str]:
    """The packages a rendered table needs: booktabs (rules), graphicx (resize), rotating (landscape)."""
    return ["booktabs", "graphicx", *(["rotating"] if fit == "landscape" else [])]


FLOAT_PT = 480.0  # usable height of one float: an article's \textheight (~550 pt) less caption and margins
ROW_PT, HEADER_LINE_PT, RULES_PT, GAP_PT = 12.0, 11.0, 12.0, 8.0  # \small rows, header lines, booktabs rules, \medskip
NOTE_LINE_PT = 9.5  # \footnotesize


def notes_height(notes: list[str], width_pt: float) -> float:
    """Estimated height of the notes paragraph (footnotesize is about 0.85 of small's widths)."""
    return sum(max(1, -(-int(text_width(n) * 0.85) // int(width_pt))) for n in notes) * NOTE_LINE_PT


def floats(parts: list[list[int]], headers: list[str], n_rows: int, notes_pt: float,
           budget: float = FLOAT_PT) -> list[list[tuple[int, int, int]]]:
    """Pack (block, first row, end row) pieces into floats no taller than ``budget`` (the last one also holds
    the notes): a block too tall for one float continues in the next, its header repeated."""
    pieces: list[tuple[int, int, int, float]] = []
    for b, part in enumerate(parts):
        head = RULES_PT + HEADER_LINE_PT * max(len(header_lines(headers[i])) for i in part)
        per = max(1, int((budget - head - GAP_PT) // ROW_PT))
        for start in range(0, max(n_rows, 1), per):
            end = min(n_rows, start + per)
            pieces.append((b, start, end, head + ROW_PT * (end - start) + GAP_PT))
    out: list[list[tuple[int, int, int]]] = [[]]
    used = 0.0
    for b, start, end, height in pieces:
        if out[-1] and used + height > budget:
            out.append([])
            used = 0.0
        out[-1].append((b, start, end))
        used += height
    if len(out[-1]) > 1 and used + notes_pt > budget:  # the notes need room under the last piece
        out.append([out[-1].pop()])
    return out
