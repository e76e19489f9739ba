"""The LAMA notebook runs headless on hand-made records and shows one row per (model, method, template, protocol)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tables_fixture import record, save

pytest.importorskip("nbconvert", reason="the test extra installs nbconvert and ipykernel")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "lama_results.ipynb"
FOLLOWS = {"task": {"relations": ["P17"]}, "model": {}, "method": {}}


def test_notebook_executes_and_never_averages_across_methods_or_protocols(tmp_path):
    import nbformat

    runs = tmp_path / "runs"
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    reference = {"task": {"relations": ["P17"], "protocol": "reference"}, "model": {}, "method": {}}
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.1}, config=reference, seed=35))
    save(runs, record("lama", "bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.6}, config=FOLLOWS))
    save(runs, record("lama", "bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.4}, config=FOLLOWS, seed=35))
    save(runs, record("lama", "tiny-bert", "manual", "lama", {"P17": 0.2}, config=FOLLOWS, tag="smoke"))
    (runs / "lama" / "broken.json").write_text("{")
    out = tmp_path / "executed.ipynb"
    env = {**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output",
                    str(out), str(NOTEBOOK)], check=True, env=env, capture_output=True, timeout=300)
    cells = nbformat.read(out, as_version=4).cells
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     for c in cells if c.cell_type == "code" for o in c.outputs)
    assert "skipped" in text and "broken.json" in text
    assert "4 rows" in text
    # Variant, Model, Method, Template, Protocol, Train facts, (Config), P@1, sd, n
    expected = [r"bert-base-cased\s+manual\s+lama\s+paper\s+original\s+50\.0\s+—\s+1\b",
                r"bert-base-cased\s+manual\s+lama\s+reference\s+original\s+10\.0\s+—\s+1\b",
                r"bert-base-cased\s+ptuning\s+ptuning_lama\s+paper\s+original\s+50\.0\s+14\.1\s+2\b",  # 60, 40
                r"tiny-bert \[smoke\]\s+manual\s+lama\s+paper\s+original\s+20\.0\s+—\s+1\b"]
    rows = [line for line in text.splitlines() if line.strip().startswith("lama34k")]
    assert len(rows) >= 4
    for pattern in expected:
        assert sum(bool(re.search(pattern, line)) for line in rows[:4]) == 1, pattern
