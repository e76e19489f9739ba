"""docs/parity.md's FewGLUE tables (issue 23's done-when): a row per backbone x task x pattern (PET) and template
(PT-Fewshot), with inputs identical n/n, the loss and logit differences within 1e-5 (or both sides refusing), and
flags; and the column writer of bench/parity/fewglue_table.py on a hand-made table."""

import re

from bench.parity import fewglue_losses as fl
from bench.parity import fewglue_ptlosses as fp
from bench.parity.fewglue import PET_TASK, patterns
from bench.parity.fewglue_table import HEADERS, _patterns, set_columns
from bench.paths import REPO_ROOT

NUMBER = re.compile(r"^([0-9.]+e[+-][0-9]+)")


def _rows(ref: str) -> list[list[str]]:
    lines = (REPO_ROOT / "docs" / "parity.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADERS[ref]))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.split("|")[1:-1]])
    return rows


def _check(ref: str, wanted: set[tuple[str, str, int]]) -> None:
    seen = set()
    for cols in _rows(ref):
        assert len(cols) == 8, cols
        model, task, pats, train, val, loss, logits, flags = cols
        for p in _patterns(pats):
            seen.add((model, task, p))
        if loss == "both refuse":
            assert train == val == "reference refuses" and flags, cols
            continue
        assert re.fullmatch(r"\d+/\d+", train) and re.fullmatch(r"\d+/\d+", val), cols
        assert float(NUMBER.match(loss).group(1)) <= 1e-5, cols
        assert logits == "—" or float(logits) <= 1e-5, cols
        assert flags, cols
    assert seen == wanted


def test_pet_table_has_every_backbone_task_pattern_within_tolerance():
    _check("pet", {(m, t, p) for m in fl.MODELS for t in PET_TASK for p in patterns(t)})


def test_ptfewshot_table_has_every_backbone_task_template_within_tolerance():
    _check("ptfewshot", {(m, c.task, c.pattern) for m in fl.MODELS for c in fp.cases()})


def test_set_columns_inserts_then_replaces_the_two_cells():
    table = ("x\n\n" + HEADERS["pet"] + " flags |\n|---|---|---|---|---|---|\n"
             "| tiny-bert | CB | 0-1 | 32/32 | 53/53 | none |\n| tiny-bert | CB | 4 | r | r | both |\n\nafter\n")
    cells = {("tiny-bert", "CB", 0): ("1.0e-07", "2.0e-07"), ("tiny-bert", "CB", 1): ("3.0e-07", "—"),
             ("tiny-bert", "CB", 4): ("both refuse", "both refuse")}
    once = set_columns(table, "pet", cells)
    assert HEADERS["pet"] + " loss, micro-batch losses (max rel) | label logits (max rel) | flags |" in once
    assert "|---|---|---|---|---|---|---|---|" in once
    assert "| tiny-bert | CB | 0-1 | 32/32 | 53/53 | 3.0e-07 | 2.0e-07 | none |" in once  # the larger of 0 and 1
    assert "| tiny-bert | CB | 4 | r | r | both refuse | both refuse | both |" in once
    assert once.endswith("\nafter\n") and once.startswith("x\n")
    assert set_columns(once, "pet", cells) == once  # a second run replaces, never adds, the columns
