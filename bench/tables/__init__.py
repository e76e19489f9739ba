"""Tables and figures as data: record frames, YAML specs, one generic builder, renderers.

``python -m bench.tables`` rebuilds every table of ``conf/tables/*.yaml`` (and, with ``--figures``,
every chart of ``conf/figures/*.yaml``) from ``results/runs/``; docs/tables.md explains the specs.
"""

from bench.tables.builder import Table, build_table, load_published
from bench.tables.frame import Frames, build_frames, read_frames
from bench.tables.spec import load_spec, load_specs

__all__ = ["Frames", "Table", "build_frames", "build_table", "load_published", "load_spec", "load_specs",
           "read_frames"]
