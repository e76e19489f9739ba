"""Hydra entry point: ``python -m bench.run task=lama model=tiny-bert method=manual template=lama``.

One call = one job (``bench.job``): one record per prompt rank under ``results/runs/<task>/``, named
from the spec and the hash of its result-relevant config, so every point of a multirun
(``-m trainer.lr=1e-4,1e-3``) gets its own record. A run whose finished record exists is skipped
(``force=true`` reruns it and keeps the old record as a ``.bak``). ``hydra/launcher=`` picks where
the jobs of a multirun go: this process (basic), a local worker pool (``local``) or SLURM (``slurm``).
Nothing in the package imports this module.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bench.errors import BenchError, ConfigError
from bench.job import JobFailed, run_job

log = logging.getLogger("bench.run")


def execute(cfg: DictConfig) -> Path:
    """Run one config's job and return the record path of its (last) run; for tests and scripts."""
    from bench.job import plan_job, preset_of

    run_job(cfg)
    return plan_job(cfg, preset_of(cfg))[-1].path


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        run_job(cfg)
    except BenchError as err:
        if HydraConfig.get().mode.name == "MULTIRUN":
            raise  # Hydra marks the job failed; the multirun goes on with the other jobs and exits non-zero
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1 if isinstance(err, JobFailed) else 2)


# before Hydra: its own errors for these are a list without a suggestion or a long traceback -----------
def _closest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _group_options(conf: Path, group: str) -> list[str]:
    if group == "experiment":  # files and the presets of the recipes (bench.grid)
        from bench.grid import preset_names

        return preset_names(conf)
    names = sorted(p.relative_to(conf / group).with_suffix("").as_posix() for p in (conf / group).glob("**/*.yaml"))
    return [*names, "basic"] if group == "hydra/launcher" else names  # Hydra's own launcher


def check_overrides(args: Sequence[str], conf: Path | None = None) -> None:
    """Every ``group=option`` names an existing option and every key a declared one, else a ConfigError
    with the closest names (``model=tiny-bret``: did you mean tiny-bert?)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from bench.checks import CONF_DIR, schema

    conf = conf or CONF_DIR
    groups = {g for p in conf.glob("*/**/*.yaml")
              if (g := p.parent.relative_to(conf).as_posix()).split("/")[0] not in ("tables", "figures", "pretrain")}
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except Exception:  # noqa: BLE001 - a syntax error: Hydra's own message is short and exact
        return
    tree = schema() if conf == CONF_DIR else schema(conf)
    for override in overrides:
        key = override.key_or_group
        if override.is_delete() or key.startswith("hydra") and key != "hydra/launcher":
            continue
        if key in groups:
            options = _group_options(conf, key)
            values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
            for value in values:
                if value is not None and str(value) != "null" and str(value) not in options:
                    listed = (", ".join(options) if len(options) <= 30 else f"{len(options)} files, ls {conf / key}"
                              + (" (and the rows of its *.grid.yaml recipes)" if key == "experiment" else ""))
                    raise ConfigError(f"no {key} option {str(value)!r} in {conf / key}{_closest(str(value), options)} "
                                      f"(known: {listed})")
            continue
        if override.is_add():  # +key=: validate_config names the closest key once composed
            continue
        node, parts = tree, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part in node:
                node = node.get(part) if isinstance(node, dict) else None
                continue
            known = sorted(map(str, node)) if depth else sorted({*map(str, node), *groups} - {"hydra"})
            dotted = ".".join(parts[:depth])
            raise ConfigError(f"unknown config key {key!r}{_closest(part, known)} "
                              f"(known {'under ' + dotted if dotted else 'top-level keys and groups'}: {', '.join(known)})")


def _results_dir(args: Sequence[str]) -> Path:
    """The results folder Hydra writes its logs into, as conf/paths/default.yaml and config.yaml resolve it."""
    given = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith(("-", "+", "~")))
    multirun = any(a in ("-m", "--multirun") for a in args)
    if multirun:  # hydra.sweep.dir is resolved before the job config: env or ./results
        return Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
    if "paths.results_dir" in given and "${" not in given["paths.results_dir"]:
        return Path(given["paths.results_dir"])
    root = given.get("paths.root") or os.environ.get("BENCH_ROOT") or os.getcwd()
    return Path(os.environ.get("BENCH_RESULTS_DIR") or Path(root) / "results")


def precheck(args: Sequence[str]) -> None:
    """Malformed config YAML, misspelled groups/options/keys, an unwritable results folder: one clear error."""
    from bench.checks import check_conf_files, check_writable

    if any(a.startswith(("--help", "-h", "--cfg", "-c", "--info", "--hydra-help")) for a in args):
        return
    check_conf_files()
    check_overrides(args)
    check_writable(_results_dir(args) / "logs", "results folder")


def cli(args: Sequence[str]) -> int:
    try:
        precheck(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    main()
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
