"""Which SuperGLUE splits a run needs, and whether the prepared data has them (checked before weights load).

The local mirror lacks the full labeled train sets of BoolQ, CB, COPA, MultiRC and ReCoRD and the
ReCoRD validation set (data_prep/superglue/README.md, "Known gaps"). A run that needs one of them
stops with :class:`MissingDataError`, which names the files and the command that fetches them
(network needed); inside a study the job is skipped as "missing data" and the tables say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import DataError, MissingDataError
from bench.paths import data_dir
from bench.superglue import data as sg

FETCH_COMMAND = "python -m data_prep superglue --full --download"
FETCH_FIX = (f"with network access run `{FETCH_COMMAND}` (official SuperGLUE v2 zips from "
             "dl.fbaipublicfiles.com, see data_prep/superglue/full.py); offline, only RTE, WiC and WSC have full "
             "train sets (task.variant=fewglue runs every task)")
MISSING_DATA = "missing data"
OFFLINE_FULL_TRAIN = {"RTE", "WiC", "WSC"}  # the only full train sets in the local mirror


def mirror_lacks(task: str, split: str, variant: str) -> bool:
    """Whether the local mirror has no source for this split (so `make data` cannot prepare it)."""
    if task == "ReCoRD" and split == "val":
        return True
    return variant == "superglue" and split in ("train", "heldout") and task not in OFFLINE_FULL_TRAIN


def needed_splits(task_cfg: Mapping[str, Any], trains: bool = True) -> list[str]:
    """The splits a run reads: train (when it trains or selects on ``heldout``), selection, report."""
    variant = str(task_cfg.get("variant") or "fewglue")
    selection = task_cfg.get("selection_split", "auto")
    if selection == "auto":
        selection = {"fewglue": "dev32", "superglue": "heldout"}.get(variant)
    report = str(task_cfg.get("report_split") or "val")
    splits = (["train"] if trains else []) + [s for s in (selection, report) if s]
    return list(dict.fromkeys(splits))


def missing_files(task_cfg: Mapping[str, Any], trains: bool = True, root: Path | None = None) -> list[Path]:
    """Prepared files the run needs that do not exist (``heldout`` lives in the train file)."""
    task = sg.canonical_task(task_cfg["dataset"])
    variant = str(task_cfg.get("variant") or "fewglue")
    paths = [sg.split_file(task, split, variant, root) for split in needed_splits(task_cfg, trains)]
    return [p for p in dict.fromkeys(paths) if not p.is_file()]


def check_data(cfg: Mapping[str, Any], method: Any = None) -> None:
    """Raise :class:`MissingDataError` (the mirror lacks it: the fetch command) or :class:`DataError` (not
    prepared: ``make data``) naming every missing file."""
    task_cfg, trains = cfg["task"], bool(getattr(method, "trains", True))
    root = (cfg.get("paths") or {}).get("data_dir")
    root = Path(root) if root else None
    task = sg.canonical_task(task_cfg["dataset"])
    variant = str(task_cfg.get("variant") or "fewglue")
    missing = {split: sg.split_file(task, split, variant, root) for split in needed_splits(task_cfg, trains)}
    missing = {split: path for split, path in missing.items() if not path.is_file()}
    if not missing:
        return
    unprepared = [path for split, path in missing.items() if not mirror_lacks(task, split, variant)]
    if unprepared:
        raise DataError(f"{task} ({variant}) data is not prepared: {', '.join(map(str, dict.fromkeys(unprepared)))}",
                        file=unprepared[0], fix="run `make data` (python -m data_prep superglue) to prepare it from "
                        "../shared/data, or point paths.data_dir at a prepared data folder")
    names = ", ".join(str(p) for p in dict.fromkeys(missing.values()))
    raise MissingDataError(f"{MISSING_DATA}: {task} ({variant}) needs {names}, which the local mirror does not have",
                           file=next(iter(missing.values())), fix=FETCH_FIX)


def cell_reason(fields: Mapping[str, Any]) -> str | None:
    """For the tables: "missing data" when a cell's task/variant has no prepared train or report file."""
    task, variant = fields.get("task"), fields.get("variant")
    if not task or not variant:
        return None
    try:
        sg.canonical_task(str(task))
    except Exception:
        return None
    task_cfg = {"dataset": task, "variant": variant, "report_split": fields.get("report_split") or "val"}
    return MISSING_DATA if missing_files(task_cfg, True, data_dir()) else None
