"""The results notebook runs headless on hand-made records of every task family (one row per configuration,
never averaged across methods or protocols), and without any LAMA record."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tables_fixture import kshot_record, record, save, sg_record

from bench.identity import config_hash

pytest.importorskip("nbconvert", reason="the test extra installs nbconvert and ipykernel")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "results.ipynb"
FOLLOWS = {"task": {"relations": ["P17"]}, "model": {}, "method": {}}


def _execute(tmp_path: Path) -> str:
    import nbformat

    out = tmp_path / "executed.ipynb"
    env = {**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output",
                          str(out), str(NOTEBOOK)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    cells = nbformat.read(out, as_version=4).cells
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     for c in cells if c.cell_type == "code" for o in c.outputs)


def _lines(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith(start)]


def test_notebook_shows_every_family_and_never_averages_across_methods_or_protocols(tmp_path):
    runs = tmp_path / "runs"
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.5}, config=FOLLOWS))
    reference = {"task": {"relations": ["P17"], "protocol": "reference"}, "model": {}, "method": {}}
    save(runs, record("lama", "bert-base-cased", "manual", "lama", {"P17": 0.1}, config=reference, seed=35))
    save(runs, record("lama", "bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.6}, config=FOLLOWS))
    save(runs, record("lama", "bert-base-cased", "ptuning", "ptuning_lama", {"P17": 0.4}, config=FOLLOWS, seed=35))
    save(runs, record("lama", "tiny-bert", "manual", "lama", {"P17": 0.2}, config=FOLLOWS, tag="smoke"))
    ids = []
    for seed, test in ((13, 0.90), (21, 0.80)):  # LM-BFF: two k-shot splits of one configuration
        config = {"task": {"name": "sst2"}, "method": {"name": "pet"}, "trainer": {"lr": 1e-5}, "seed": seed}
        ids.append(config_hash(config))  # as bench.run hashes a resolved config
        rec = kshot_record("sst2", "roberta-large", "pet", "lmbff_sst2", test, 0.5, seed=seed, config_hash=ids[-1])
        save(runs, {**rec, "config": config})
    save(runs, sg_record("rte", "albert-xxlarge-v2", "pet", "pet_rte", {"accuracy": 0.6}, rank=1, config_hash="0000aaaa"))
    (runs / "lama" / "broken.json").write_text("{")
    text = _execute(tmp_path)
    assert "skipped" in text and "broken.json" in text
    assert "4 rows" in text  # LAMA: four configurations
    # Variant, Model, Method, Template, Protocol, Train facts, P@1, sd, n, record config ids
    expected = [r"bert-base-cased\s+manual\s+lama\s+paper\s+original\s+50\.0\s+—\s+1\s+—",
                r"bert-base-cased\s+manual\s+lama\s+reference\s+original\s+10\.0\s+—\s+1\s+—",
                r"bert-base-cased\s+ptuning\s+ptuning_lama\s+paper\s+original\s+50\.0\s+14\.1\s+2\s+—",  # 60, 40
                r"tiny-bert \[smoke\]\s+manual\s+lama\s+paper\s+original\s+20\.0\s+—\s+1\s+—"]
    rows = _lines(text, "lama34k")[:4]
    for pattern in expected:
        assert sum(bool(re.search(pattern, line)) for line in rows) == 1, pattern
    # LM-BFF: one row, mean 85.0, population sd 5.0 over the two splits, both record ids
    (kshot,) = _lines(text, "sst2")
    ids = ", ".join(sorted(ids))
    assert re.search(rf"roberta-large\s+pet\s+lmbff_sst2\s+0\s+paper\s+85\.0\s+5\.0\s+2\s+{ids}$", kshot)
    (fewglue,) = _lines(text, "fewglue")
    assert re.search(r"rte\s+albert-xxlarge-v2\s+pet\s+pet_rte r1\s+paper\s+60\.0\s+—\s+1\s+0000aaaa", fewglue)


def test_notebook_runs_without_any_lama_record(tmp_path):
    save(tmp_path / "runs", kshot_record("sst2", "tiny-roberta", "pet", "lmbff_sst2", 0.5, 0.5, tag="smoke"))
    text = _execute(tmp_path)
    assert "no LAMA records yet" in text and "no SuperGLUE / FewGLUE records yet" in text
    assert re.search(r"sst2\s+tiny-roberta \[smoke\]\s+pet", text)
