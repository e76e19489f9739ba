"""``python -m bench.parity <study> --ref /path/to/checkout``: regenerate a study's golden files."""

from __future__ import annotations

import argparse
import importlib
import sys

# each study module defines SPEC (a RefSpec) and regenerate(ref: Path, args) -> list of written paths
STUDIES = ("lmbff", "superglue", "fewglue", "autoprompt", "lmbff_auto", "t5formats")
MODULES = {"fewglue": "fewglue_regen"}  # a study whose command line lives apart from its comparison code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parity", description=__doc__)
    parser.add_argument("study", choices=STUDIES)
    parser.add_argument("--ref", required=True, help="local checkout of the reference at the commit the study names")
    args, rest = parser.parse_known_args(argv)
    try:
        module = importlib.import_module(f"bench.parity.{MODULES.get(args.study, args.study)}")
    except ModuleNotFoundError as err:
        if err.name == f"bench.parity.{MODULES.get(args.study, args.study)}":
            print(f"parity study {args.study!r} is not implemented yet (docs/parity.md)", file=sys.stderr)
            return 2
        raise
    from pathlib import Path

    written = module.regenerate(Path(args.ref).resolve(), rest)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
