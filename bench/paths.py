"""Where things live.

Inside a run the Hydra config's ``paths.*`` is the one source of truth (its defaults read the
``BENCH_*`` environment variables): the task runners enter :func:`configured` with it, and every
``data_dir()`` / ``models_dir()`` / ``results_dir()`` call below them returns the configured
folder. Outside a run (scripts, tests) the environment variables or the repository defaults apply.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
KEYS = ("data_dir", "models_dir", "results_dir")
_CONFIGURED: ContextVar[dict[str, Path] | None] = ContextVar("bench_paths", default=None)


def _env_path(name: str, default: Path) -> Path:
    key = {"BENCH_DATA_DIR": "data_dir", "BENCH_MODELS_DIR": "models_dir", "BENCH_RESULTS_DIR": "results_dir"}[name]
    configured = (_CONFIGURED.get() or {}).get(key)
    if configured is not None:
        return configured
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@contextlib.contextmanager
def configured(paths_cfg: Mapping[str, Any] | None) -> Iterator[None]:
    """Within the block, the folders of ``paths_cfg`` (a run's ``paths`` config) are the suite's."""
    values = {k: Path(str(v)).expanduser() for k, v in (paths_cfg or {}).items() if k in KEYS and v}
    token = _CONFIGURED.set({**(_CONFIGURED.get() or {}), **values})
    try:
        yield
    finally:
        _CONFIGURED.reset(token)


def uses_run_paths(func: Callable) -> Callable:
    """Decorator for ``runner(cfg, ...)``: run it inside :func:`configured` with ``cfg["paths"]``."""

    @functools.wraps(func)
    def wrapper(cfg: Mapping, *args: Any, **kwargs: Any) -> Any:
        with configured(cfg.get("paths")):
            return func(cfg, *args, **kwargs)

    return wrapper


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


def paper_dir() -> Path:
    """The published numbers (committed data, ``results/paper/``): the same wherever runs are written
    (``BENCH_RESULTS_DIR``); ``BENCH_PAPER_DIR`` points elsewhere."""
    value = os.environ.get("BENCH_PAPER_DIR")
    return Path(value).expanduser().resolve() if value else REPO_ROOT / "results" / "paper"
