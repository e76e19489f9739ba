"""Models the suite builds itself: tiny random-weight checkpoints (and their tokenizers) for offline runs."""

from bench.models.tiny import BuildResult, build_tiny, current_build, ensure_built

__all__ = ["BuildResult", "build_tiny", "current_build", "ensure_built"]
