"""``python -m bench.search autoprompt [key=value ...]``: AutoPrompt's trigger search on LAMA.

``python -m bench.search table <set name>``: the found prompts as a table (``bench.search.table``).

Settings: ``conf/search/autoprompt_lama.yaml`` (every key documented there); ``key=value``
overrides one. Killed searches resume where their last accepted trigger left them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from omegaconf import OmegaConf

from bench.checks import CONF_DIR
from bench.errors import BenchError, ConfigError

SEARCHES = {"autoprompt": "autoprompt_lama"}


def load_settings(search: str, overrides: list[str]) -> dict:
    """The search's YAML with ``key=value`` overrides; unknown keys are refused."""
    path = CONF_DIR / "search" / f"{SEARCHES[search]}.yaml"
    base = OmegaConf.load(path)
    extra = OmegaConf.from_dotlist(overrides)
    unknown = sorted(set(extra) - set(base))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} for {path}; known: {', '.join(base)}")
    cfg = OmegaConf.to_container(OmegaConf.merge(base, extra), resolve=True)
    if isinstance(cfg.get("relations"), str) and cfg["relations"] != "all":
        cfg["relations"] = [r.strip() for r in cfg["relations"].split(",") if r.strip()]
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.splitlines()[0])
    parser.add_argument("search", choices=[*sorted(SEARCHES), "table"], help="a search, or table <set name>")
    parser.add_argument("overrides", nargs="*", help="key=value (conf/search/<search>.yaml); table: the set's name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.search == "table":
            from bench.search.table import write_table

            if len(args.overrides) != 1:
                raise ConfigError("usage: python -m bench.search table <prompt set name>")
            for path in write_table(args.overrides[0]):
                print(f"wrote {path}")
            return 0
        cfg = load_settings(args.search, args.overrides)
        from bench.backbones import load_backbone, load_model_config
        from bench.search.lama import search_lama

        model_cfg = dict(load_model_config(cfg["model"]))
        if cfg.get("model_path"):
            model_cfg["path"] = cfg["model_path"]
        backbone = load_backbone(model_cfg, device=cfg["device"], dtype=cfg["dtype"])
        prov = search_lama(cfg, backbone)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"prompt set {prov['name']}: {len(prov['relations'])} relations searched, {len(prov['skipped'])} skipped; "
          f"dev macro P@1 {prov['dev_macro_p_at_1']}")
    print(f"  use it: python -m bench.run task={'lama' if cfg['variant'] == 'lama34k' else cfg['variant']} "
          f"model={cfg['model']} method=manual template=autoprompt_bert template.name=autoprompt_search "
          f"template.prompt_set={prov['name']} task.protocol=reference  (the study form: the presets "
          f"{cfg['variant']}_autoprompt_trigger_search then {cfg['variant']}_autoprompt_search, docs/autoprompt.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
