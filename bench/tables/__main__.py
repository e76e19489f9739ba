"""``python -m bench.tables``: rebuild results/tables/ (Markdown, LaTeX, CSV) from results/runs/.

Filters: ``--models a,b`` and ``--tags smoke,none`` (``none``: records without a tag) select records;
``--only lama34k,sensitivity_p17`` builds some specs. A corrupted record is reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.paths import results_dir
from bench.tables.builder import build_table, load_published
from bench.tables.frame import read_frames
from bench.tables.render import write_table
from bench.tables.spec import TABLES_DIR, load_specs


def _list(text: str | None) -> list[str] | None:
    return [t for t in text.split(",") if t] if text else None


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--results", type=Path, default=results_dir(), help="results folder (runs/ inside)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <results>/tables)")
    p.add_argument("--models", default=None, help="comma-separated model names to keep")
    p.add_argument("--tags", default=None, help="comma-separated tags to keep ('none' = untagged records)")
    p.add_argument("--only", default=None, help="comma-separated spec names (or file stems) to build")
    p.add_argument("--specs", type=Path, default=None, help="spec folder")
    return p


def build_all(results: Path, out: Path, specs_dir: Path = TABLES_DIR, models=None, tags=None, only=None,
              published_dir: Path | None = None) -> tuple[list[Path], list]:
    """Build every spec; returns the written paths and the skipped records' problems."""
    frames = read_frames(results / "runs", models, tags)
    published_dir = published_dir or results_dir() / "paper"
    published = every = None
    files = sorted(Path(published_dir).glob("*.csv"))
    if files:
        import pandas as pd

        published = every = pd.concat([load_published(f) for f in files], ignore_index=True)
        if models:
            published = published[published["model"].isin(models)]
    written: list[Path] = []
    for spec in load_specs(specs_dir, only):  # published.all_models: the paper's rows stay whatever --models keeps
        table = build_table(spec, frames, every if (spec.get("published") or {}).get("all_models") else published)
        if table is not None:
            written += write_table(table, out)
    return written, frames.problems


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    out = args.out or args.results / "tables"
    written, problems = build_all(args.results, out, args.specs or TABLES_DIR, _list(args.models),
                                  _list(args.tags), _list(args.only))
    for problem in problems:
        print(f"skipped record {problem}", file=sys.stderr)
    if not written:
        print(f"no finished records under {args.results / 'runs'} for these specs: nothing to tabulate")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
