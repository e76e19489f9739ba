"""``python -m bench.aggregate``: rebuild every table under results/tables/ from results/runs/."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.aggregate.lama_tables import write_lama_tables
from bench.paths import results_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=results_dir(), help="results folder (runs/ inside)")
    parser.add_argument("--out", type=Path, default=None, help="tables folder (default: <results>/tables)")
    args = parser.parse_args(argv)
    runs = args.results / "runs"
    out = args.out or args.results / "tables"
    published = results_dir() / "paper" / "published.csv"
    written = write_lama_tables(runs, out, published)
    if not written:
        print(f"no finished LAMA records under {runs}: nothing to tabulate")
        return 0
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
