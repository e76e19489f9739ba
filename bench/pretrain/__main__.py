"""``python -m bench.pretrain NAME [key=value ...]``: build conf/model/NAME.yaml's mini model.

``--try`` trains a conf/pretrain recipe in memory and writes only its record (for recipe search):
``python -m bench.pretrain --try mini-bert train.epochs=0.5 --record /tmp/r.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.errors import BenchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pretrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="model names (conf/model/<name>.yaml), or `all`; with --try a recipe")
    parser.add_argument("--try", dest="trial", action="store_true", help="train a recipe in memory, save only the record")
    parser.add_argument("--record", type=Path, help="where --try writes its record (JSON)")
    parser.add_argument("--save", type=Path, help="folder where --try also saves the model and tokenizer")
    parser.add_argument("--force", action="store_true", help="rebuild even when an up-to-date build exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.trial:
            from bench.pretrain.build import load_recipe, run_recipe

            name, overrides = args.names[0], args.names[1:]
            built = run_recipe(load_recipe(name, overrides), progress=not args.quiet)
            if args.record:
                args.record.parent.mkdir(parents=True, exist_ok=True)
                args.record.write_text(json.dumps(built.record, indent=2), encoding="utf-8")
            if args.save:
                built.result.model.save_pretrained(args.save)
                built.tokenizer.save_pretrained(args.save)
            return 0
        from bench.models.mini import MINI_MODELS, model_config
        from bench.pretrain.publish import build_mini, ensure_built

        names = list(MINI_MODELS) if args.names == ["all"] else args.names
        for name in names:
            cfg = model_config(name)
            if args.force:
                build_mini(cfg, progress=not args.quiet)
            else:
                ensure_built(cfg, progress=not args.quiet)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
