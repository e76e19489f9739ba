"""Models the suite builds itself: tiny random-weight checkpoints (and their tokenizers) for offline runs.

`python -m bench.models.tiny all` builds every tiny model; names are imported lazily so that running
the module does not import it twice.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BuildResult", "build_tiny", "current_build", "ensure_built"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bench.models import tiny

        return getattr(tiny, name)
    raise AttributeError(f"module 'bench.models' has no attribute {name!r}")
