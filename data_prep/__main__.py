"""CLI: ``python -m data_prep {lama,superglue,lm_bff,all} [--mirror DIR] [--out DIR] [--force] [--full]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from bench.errors import BenchError
from data_prep import FAMILIES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__)
    parser.add_argument("family", choices=(*FAMILIES, "lm-bff", "all"))
    parser.add_argument("--mirror", type=Path, default=None,
                        help="local copy of the raw sources (default: $BENCH_MIRROR or ../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="data root to write into (default: $BENCH_DATA_DIR or data/)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the MANIFEST says up to date")
    parser.add_argument("--download", action="store_true",
                        help="ignore any mirror; fetch canonical URLs into <out>/_downloads/ and verify sha256")
    parser.add_argument("--full", action="store_true",
                        help="superglue: also fetch the full train sets the mirror lacks (and ReCoRD val); "
                             "lm_bff: LM-BFF's SNLI test set (SNLI 1.0 dev, raw); NEEDS NETWORK")
    parser.add_argument("--quiet", action="store_true", help="print errors only")
    parser.add_argument("--write-sums", action="store_true",
                        help="maintainers: rebuild and rewrite data_prep/<family>/SHA256SUMS from the sources read")
    args = parser.parse_args(argv)
    names = FAMILIES if args.family == "all" else (args.family.replace("-", "_"),)
    started, failed = time.time(), []
    for name in names:
        module = importlib.import_module(f"data_prep.{name}")
        try:
            module.prepare(args.mirror, args.out, args.force, download=args.download, quiet=args.quiet,
                           write_sums=args.write_sums)
            if args.full and name == "superglue":
                from data_prep.superglue.full import prepare_full
                prepare_full(args.out)
            if args.full and name == "lm_bff":
                from data_prep.lm_bff.snli_test import prepare_snli_test
                prepare_snli_test(args.out)
        except BenchError as err:
            print(f"[{name}] FAILED: {err}", file=sys.stderr)
            failed.append(name)
    if not args.quiet:
        print(f"done in {time.time() - started:.1f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
