"""Where things live. Every location can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Normalised data written by data_prep (gitignored)."""
    return _env_path("BENCH_DATA_DIR", REPO_ROOT / "data")


def mirror_dir() -> Path | None:
    """Local mirror of the raw sources; defaults to ../shared/data beside the checkout when present."""
    value = os.environ.get("BENCH_MIRROR")
    if value:
        return Path(value).expanduser().resolve()
    default = REPO_ROOT.parent / "shared" / "data"
    return default if default.is_dir() else None


def models_dir() -> Path:
    """Models the suite builds itself (tiny and mini models), in Hugging Face hub-cache layout."""
    return _env_path("BENCH_MODELS_DIR", data_dir() / "models")


def results_dir() -> Path:
    return _env_path("BENCH_RESULTS_DIR", REPO_ROOT / "results")
