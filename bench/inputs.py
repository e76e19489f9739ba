"""Runs a job consumes, by exact identity: ``needs.presets`` x ``needs.seeds`` x every rank, same model and overrides.

A preset that reads other runs (PET's distillation, iPET's next generation) declares them in its config::

    needs:
      presets: [fewglue_pet_copa]   # every prompt rank x seed run of this preset
      seeds: [42, 43, 44]           # their seeds (null: the job's own seed); a study passes its seed list

:func:`resolve_inputs` composes each needed preset with the job's own model and command-line overrides
(the ones that are not about the consumer itself: experiment, seed, ranks, needs, force) and plans it as
its job would (``bench.job.plan_job``, passed in), so every needed run has its exact record name,
config hash included. Before any weights load the job refuses when one is missing, failed, or only
present under another config (:class:`InputsError` lists them and the command that makes them). The
record lists its inputs (:func:`input_ref`: name, path under the results folder, sha256 of the record
file); :func:`load_inputs` reads them back and refuses a file whose checksum changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.io_utils import sha256_file
from bench.paths import REPO_ROOT
from bench.records import is_finished, latest_failure, load_record

CONF_DIR = REPO_ROOT / "conf"
# override keys that describe the consuming job, not the runs it reads
CONSUMER_KEYS = ("experiment", "seed", "ranks", "template.rank", "force", "needs")


class InputsError(ConfigError):
    """A run this job reads is missing, failed, or was produced under another config."""


@dataclass
class InputRun:
    """One run a job needs: its exact name, where its record lies and what state it is in."""

    preset: str
    seed: int
    rank: int | None
    name: str
    path: Path
    state: str  # done | missing | failed | other config
    detail: str = ""


@contextmanager
def hydra_compose(conf_dir: Path = CONF_DIR) -> Iterator[None]:
    """Hydra's compose API usable here: inside a running app (its HydraConfig restored afterwards) or not."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    saved = HydraConfig.instance().cfg
    try:
        if GlobalHydra.instance().is_initialized():
            yield
        else:
            with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3", job_name="inputs"):
                yield
    finally:
        HydraConfig.instance().cfg = saved


def compose_config(overrides: Sequence[str]):
    """The config ``bench.run <overrides>`` composes (call where Hydra is initialised, e.g. inside :func:`hydra_compose`)."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # resolves ${hydra:runtime.cwd} in paths
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def compose_job(preset: str, model: str, overrides: Sequence[str]):
    """The config one study job runs (what ``bench.run experiment=<preset> model=<model> ranks=preset`` composes)."""
    return compose_config([f"experiment={preset}", f"model={model}", "ranks=preset", *overrides])


def job_overrides(cfg: Any) -> list[str]:
    """The command-line overrides the job was composed with (Hydra's ``overrides.task``), or none."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in HydraConfig.get().overrides.task]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def producer_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides a needed preset is composed with: the job's, less the ones about the job itself."""
    return [o for o in overrides if _key(o) != "model"  # given as its own argument; model.path= etc. stay
            and not any(_key(o) == k or _key(o).startswith(k + ".") for k in CONSUMER_KEYS)]


def needs_of(cfg: Any) -> tuple[list[str], list[int]]:
    """(presets, seeds) the job reads; ([], []) for a job that reads no other run."""
    needs = cfg.get("needs") or {}
    presets = [str(p) for p in (needs.get("presets") or [])]
    seeds = needs.get("seeds")
    return presets, [int(s) for s in (seeds if seeds is not None else [cfg.get("seed")])] if presets else []


def needed_runs(cfg: Any, plan: Callable, overrides: Sequence[str] | None = None,
                cache: dict | None = None) -> list[InputRun]:
    """Every run the job needs, with its state; ``plan`` is ``bench.job.plan_job`` (cfg, preset -> runs);
    ``cache`` (a dict kept by the caller) reuses planned input runs across jobs that read the same ones."""
    presets, seeds = needs_of(cfg)
    if not presets:
        return []
    base = producer_overrides(job_overrides(cfg) if overrides is None else overrides)
    model = str(cfg.model.name)
    results = Path(cfg.paths.results_dir)
    out: list[InputRun] = []
    with hydra_compose():
        for preset in presets:
            for seed in seeds:
                key = (preset, model, seed, tuple(base))
                if cache is None or key not in cache:
                    try:
                        producer = compose_job(preset, model, [*base, f"seed={seed}"])
                    except Exception as err:  # noqa: BLE001 - Hydra's errors differ by version; say which input
                        raise InputsError(f"cannot compose the input preset {preset} (model {model}, seed {seed}) "
                                          f"with this job's overrides {base}: {err}") from None
                    planned = [(run.rank, run.spec.name, run.path) for run in plan(producer, preset)]
                    if cache is None:
                        cache = {}
                    cache[key] = planned
                for rank, name, path in cache[key]:
                    out.append(_state(InputRun(preset, seed, rank, name, path, "missing"), results))
    return out


def _state(run: InputRun, results: Path) -> InputRun:
    if is_finished(run.path):
        record = load_record(run.path)
        expected = run.name.rsplit("__", 1)[-1]
        if (record.get("spec") or {}).get("config_hash") != expected:
            run.state, run.detail = "other config", f"{run.path} holds config {record['spec'].get('config_hash')}"
        else:
            run.state, run.detail = "done", str(run.path)
        return run
    failure = latest_failure(results / "failed", run.name)
    if failure is not None:
        run.state, run.detail = "failed", str(failure)
        return run
    stem = run.name.rsplit("__", 1)[0]  # the same run under another config hash (another lr, another limit)
    others = sorted(p.name for p in run.path.parent.glob(f"{stem}__*.json")) if run.path.parent.is_dir() else []
    if others:
        run.state, run.detail = "other config", "only under other configs: " + ", ".join(others)
    return run


def refusal(runs: Sequence[InputRun], cfg: Any, overrides: Sequence[str] | None = None) -> str | None:
    """The error text when some needed run is not done (names, states, the command that makes them), else None."""
    bad = [r for r in runs if r.state != "done"]
    if not bad:
        return None
    base = producer_overrides(job_overrides(cfg) if overrides is None else overrides)
    lines = [f"{len(bad)} of {len(runs)} input runs of this job are not finished under this config:"]
    lines += [f"  {r.state}: {r.name}" + (f" ({r.detail})" if r.detail else "") for r in bad]
    for preset in dict.fromkeys(r.preset for r in bad):
        seeds = sorted({r.seed for r in bad if r.preset == preset})
        lines.append("make them with: python -m bench.run -m " + " ".join(
            [f"experiment={preset}", f"model={cfg.model.name}", "ranks=preset", f"seed={','.join(map(str, seeds))}",
             *base]))
    return "\n".join(lines)


def resolve_inputs(cfg: Any, plan: Callable) -> list[dict]:
    """The job's input references (name, path, sha256), or InputsError naming what is missing; before weights load."""
    runs = needed_runs(cfg, plan)
    message = refusal(runs, cfg)
    if message:
        raise InputsError(message)
    return [input_ref(r.path, Path(cfg.paths.results_dir)) for r in runs]


def input_ref(path: Path, results_dir: Path) -> dict:
    """What a record keeps of one input: its name, its path under the results folder, its file's sha256."""
    path = Path(path)
    try:
        shown = str(path.resolve().relative_to(Path(results_dir).resolve()))
    except ValueError:
        shown = str(path)
    return {"name": path.stem, "path": shown, "sha256": sha256_file(path)}


def load_inputs(refs: Sequence[Mapping], results_dir: Path) -> list[dict]:
    """The input records, each checked against the checksum the job resolved it with."""
    out = []
    for ref in refs:
        path = Path(ref["path"])
        path = path if path.is_absolute() else Path(results_dir) / path
        if not path.is_file() or sha256_file(path) != ref["sha256"]:
            raise InputsError(f"input record {path} changed or vanished since the job resolved it "
                              f"(sha256 {ref['sha256'][:12]}...); rerun the job")
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out
