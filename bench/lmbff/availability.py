"""Whether an LM-BFF run's data is prepared (checked before weights load) and what the tables say otherwise.

LM-BFF's SNLI test set (SNLI 1.0 dev, raw text) is not in the local mirror; ``python -m data_prep
lm_bff --full --download`` fetches it. Without it an SNLI run stops with :class:`MissingDataError`
before its weights load, a study lists it as "missing data", and the SNLI test cells say so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.lmbff import data as kd
from bench.paths import data_dir

MISSING_DATA = "missing data"


def _test_path(task_cfg: Mapping[str, Any], seed: int, root: Path | None) -> Path:
    task = kd.canonical_task(task_cfg["dataset"])
    return kd.split_file(task, "test", seed, int(task_cfg.get("k") or 16), root, task_cfg.get("test_file"),
                         str(task_cfg.get("variant") or "k16"))


def check_data(cfg: Mapping[str, Any], method: Any = None) -> None:
    """Raise MissingDataError when the report split is LM-BFF's SNLI test set and it is not prepared."""
    task_cfg = cfg["task"]
    if str(task_cfg.get("report_split") or "test") != "test":
        return
    root = (cfg.get("paths") or {}).get("data_dir")
    seed = int(cfg.get("seed") or kd.SEEDS[0])
    if not _test_path(task_cfg, seed if seed in kd.SEEDS else kd.SEEDS[0], Path(root) if root else None).is_file():
        kd.load_split(kd.canonical_task(task_cfg["dataset"]), "test", kd.SEEDS[0], k=int(task_cfg.get("k") or 16),
                      root=Path(root) if root else None, test_file=task_cfg.get("test_file"),
                      variant=str(task_cfg.get("variant") or "k16"))  # raises the error that names the fix


def cell_reason(fields: Mapping[str, Any]) -> str | None:
    """For the tables: "missing data" for a cell whose LM-BFF test file is not prepared (a table of several
    tasks names the cell's task in its column key, ``<task>:<method>``)."""
    task, variant = fields.get("task"), fields.get("variant")
    if isinstance(task, list | tuple) and ":" in str(fields.get("column") or ""):
        task = str(fields["column"]).split(":", 1)[0]
    if not task or not variant or isinstance(task, list | tuple):
        return None
    try:
        cfg = {"dataset": kd.canonical_task(str(task)), "variant": str(variant)}
        return None if _test_path(cfg, kd.SEEDS[0], data_dir()).is_file() else MISSING_DATA
    except Exception:
        return None


def test_file_facts(path: Path) -> dict[str, Any]:
    """What a record says about the test file it scored: path, sha256, and its source sidecar if any."""
    facts: dict[str, Any] = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    sidecar = path.with_name(path.stem + ".source.json")
    if sidecar.is_file():
        facts["source"] = json.loads(sidecar.read_text(encoding="utf-8"))
    return facts
