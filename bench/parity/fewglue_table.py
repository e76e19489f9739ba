"""docs/parity.md's FewGLUE tables: the loss and logit columns beside the inputs columns.

``python -m bench.parity.fewglue_table [--write docs/parity.md]`` computes, per backbone x task x pattern (PET)
or template (PT-Fewshot), the suite's max relative difference from the reference's fixed-weight goldens
(``losses_<model>``, ``ptlosses_<model>``): the loss of one batch of 8 and the 4 micro-batch losses (the larger
of the two), and the label logits (relative to the batch's largest). With ``--write`` it sets those two cells in
each row of the two inputs tables (rows are matched by backbone, task and pattern; a row for several patterns,
``1-4`` or ``1, 2``, gets the largest); the identical counts and flags stay as written.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bench.parity import fewglue_losses as fl
from bench.parity import fewglue_ptlosses as fp

Key = tuple[str, str, int]
HEADERS = {"pet": "| backbone | task | pattern | train identical | val identical |",
           "ptfewshot": "| backbone | task | template | train identical | val identical |"}
COLUMNS = ("loss, micro-batch losses (max rel)", "label logits (max rel)")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def pet_cells() -> dict[Key, tuple[str, str]]:
    """PET: every case of :func:`fewglue_losses.grid` per model; ReCoRD over its examples with PET's inputs."""
    from bench.parity.golden import load_golden, max_rel_diff

    out: dict[Key, tuple[str, str]] = {}
    for model in fl.MODELS:
        gold = load_golden("fewglue", fl.golden_name(model))["cases"]
        cases = [c for c in fl.grid() if not (c.mlm or c.classifier)]
        runnable = [c for c in cases if "error" not in gold[c.name]]
        result = fl.compare(model=model, cases=runnable)
        for case in cases:
            key = (model, case.task, case.pattern)
            if "error" in gold[case.name]:
                out[key] = ("both refuse", "both refuse")
            elif case.task != "ReCoRD":
                r = result[case.name]
                out[key] = (_fmt(max(r["loss"], r["micro_losses"])), _fmt(r["logits"]))
        with fl.head_eps(model):  # ALBERT's masked-LM head as PET's transformers 3.0.2 built it
            rows = fl.record_losses(model=model)
        worst = max(max_rel_diff(r["suite"], r["pet"]) for r in rows)
        out[(model, "ReCoRD", 0)] = (f"{_fmt(worst)} ({len(rows)} examples with PET's inputs, one each)", "—")
    return out


def ptfewshot_cells() -> dict[Key, tuple[str, str]]:
    out: dict[Key, tuple[str, str]] = {}
    for model in fl.MODELS:
        for name, r in fp.compare(model).items():
            case = next(c for c in fp.cases() if c.name == name)
            out[(model, case.task, case.pattern)] = (_fmt(max(r["loss"], r["micro_losses"])), _fmt(r["logits"]))
    return out


def _patterns(cell: str) -> list[int]:
    cell = cell.strip()
    if "-" in cell:
        lo, hi = cell.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(p) for p in cell.split(",")]


def _worst(values: list[str]) -> str:
    """The largest number among a multi-pattern row's cells (the first cell where none is a number)."""
    numbers = [float(v) for v in values if re.fullmatch(r"[0-9.]+e[+-][0-9]+", v)]
    return _fmt(max(numbers)) if numbers else values[0]


def set_columns(text: str, ref: str, cells: dict[Key, tuple[str, str]]) -> str:
    """``text`` with the reference's inputs table given (or re-given) the two loss columns before its flags."""
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        if line.startswith(HEADERS[ref]):
            head = line.split("|")[1:-1]
            n_fixed = 5
            line = "|" + "|".join(head[:n_fixed] + [f" {c} " for c in COLUMNS] + [head[-1]]) + "|"
            inside = True
        elif inside and line.startswith("|---"):
            line = "|" + "---|" * (n_fixed + len(COLUMNS) + 1)
        elif inside and line.startswith("| "):
            cols = line.split("|")[1:-1]
            model, task = cols[0].strip(), cols[1].strip()
            found = [cells[(model, task, p)] for p in _patterns(cols[2])]
            new = [_worst([f[0] for f in found]), _worst([f[1] for f in found])]
            line = "|" + "|".join(cols[:n_fixed] + [f" {c} " for c in new] + [cols[-1]]) + "|"
        elif inside:
            inside = False
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parity.fewglue_table", description=__doc__)
    parser.add_argument("--write", type=Path, default=None, help="set the columns in this file (docs/parity.md)")
    args = parser.parse_args(argv)
    cells = {"pet": pet_cells(), "ptfewshot": ptfewshot_cells()}
    if args.write is None:
        for ref, table in cells.items():
            for key, value in sorted(table.items()):
                print(ref, *key, *value, sep=" | ")
        return
    text = args.write.read_text(encoding="utf-8")
    for ref, table in cells.items():
        text = set_columns(text, ref, table)
    args.write.write_text(text, encoding="utf-8")
    print(f"wrote the loss columns of {sum(map(len, cells.values()))} rows into {args.write}")


if __name__ == "__main__":
    main()
