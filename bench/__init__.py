"""Benchmark reproduction suite for prompt-based adaptation of pretrained language models."""

__version__ = "0.1.0"

from bench.grid import register as _register_grids  # noqa: E402 - after the version, which needs no Hydra

_register_grids()  # every Hydra compose after `import bench` sees the recipes' presets (conf/experiment/*.grid.yaml)
