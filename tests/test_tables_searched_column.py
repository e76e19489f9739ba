"""The "AutoPrompt (searched here)" column of the LAMA tables: shown in lama29k only where a searched run
exists (`show_empty: false`), with the hand-computed macro P@1 and the dagger for a shortened search."""

from __future__ import annotations

import pandas as pd
from tables_fixture import record, save, write_fixture

from bench.paths import REPO_ROOT
from bench.tables import build_table, load_published, load_specs, read_frames

LABEL = "AutoPrompt (searched here)"


def _tables(runs):
    frames = read_frames(runs)
    paper = sorted((REPO_ROOT / "results" / "paper").glob("*.csv"))
    published = pd.concat([load_published(p) for p in paper], ignore_index=True)
    specs = {s["name"]: s for s in load_specs(only=["lama29k", "lama34k"])}
    return {name: build_table(spec, frames, published) for name, spec in specs.items()}


def test_lama29k_hides_the_searched_column_without_a_searched_run(tmp_path):
    write_fixture(tmp_path / "runs")
    assert LABEL not in _tables(tmp_path / "runs")["lama29k"].display.columns


def test_both_lama_tables_show_the_searched_prompts_with_the_iterations_marked(tmp_path):
    runs = tmp_path / "runs"
    write_fixture(runs)
    search = {"iterations": 100, "limit_per_relation": None, "skipped": {}}
    for variant in ("lama29k", "lama34k"):
        save(runs, record("lama", "bert-base-cased", "manual", "autoprompt_search",
                          {"P17": 0.25, "P19": 0.50, "P1001": 0.30}, variant=variant,
                          extra={"autoprompt_search": search}))
    tables = _tables(runs)
    for name in ("lama29k", "lama34k"):
        display = tables[name].display
        assert LABEL in display.columns, name
        row = display[display.iloc[:, 0].astype(str).str.startswith("bert-base-cased")].iloc[0]
        assert row[LABEL].startswith("35.0"), (name, row[LABEL])  # (25 + 50 + 30) / 3, one digit
        assert "†" in row[LABEL], (name, row[LABEL])  # 100 iterations, not the reference's 1,000
