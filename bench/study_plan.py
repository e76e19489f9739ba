"""A study's plan: its YAML, the jobs of presets x models x seeds, their states, stages and multirun groups.

``plan_study`` composes every job as ``bench.run`` would and reads the results folder; nothing runs.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from bench.errors import ConfigError
from bench.inputs import compose_job, needed_runs, needs_of
from bench.paths import REPO_ROOT
from bench.records import is_finished, latest_failure, load_record

CONF_DIR = REPO_ROOT / "conf"
LAUNCHERS = ("basic", "local", "slurm", "submitit")  # conf/hydra/launcher/<name>.yaml (basic: Hydra's own)


@dataclass
class RunState:
    preset: str
    model: str
    seed: int
    rank: int | None
    name: str
    state: str  # done | missing | failed | n/a | missing data (a split not in the prepared data)
    detail: str = ""
    inputs_pending: list[str] = field(default_factory=list)  # "<state>: <name>" of each input run not done
    score: str = ""  # a finished run's reported score ("val score 0.8125")


@dataclass
class StudyPlan:
    runs: list[RunState] = field(default_factory=list)
    needs: dict[str, list[str]] = field(default_factory=dict)  # preset -> the presets whose runs it reads

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.runs)


def _names(folder: Path) -> list[str]:
    if folder.name == "experiment":  # files and the presets of the recipes (bench.grid)
        from bench.grid import preset_names

        return preset_names(folder.parent)
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_name(kind: str, name: str, folder: Path) -> None:
    """ConfigError with the closest known names when ``name`` matches no YAML in ``folder``."""
    known = _names(folder)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"no {kind} named {name!r} in {folder}{hint} (known: {', '.join(known)})")


def load_study(name: str, conf_dir: Path = CONF_DIR) -> dict:
    check_name("study", name, conf_dir / "study")
    from bench.checks import check_conf_files

    path = conf_dir / "study" / f"{name}.yaml"
    check_conf_files(conf_dir)  # a malformed YAML (the study's or a preset's): file:line:column, not a traceback
    study = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for key in ("presets", "models"):
        if not study.get(key):
            raise ConfigError(f"{path}: key {key!r} is missing or empty (a list of conf/{'experiment' if key == 'presets' else 'model'} names)")
    for preset in study["presets"]:
        check_name("experiment preset", preset, conf_dir / "experiment")
    return study


def debug_override(study: dict, models: Sequence[str], overrides: Sequence[str]) -> str | None:
    """The study's debug preset when every model matches its prefixes (``debug:`` in order, each entry
    also admitting the prefixes before it: tiny only -> smoke, tiny and mini -> mini), unless debug= is given."""
    if any(o.split("=")[0].lstrip("+~") == "debug" for o in overrides):
        return None
    prefixes = list((study.get("debug") or {}).items())
    for i in range(len(prefixes)):
        allowed = [p for p, _ in prefixes[: i + 1]]
        if all(any(m.startswith(p) for p in allowed) for m in models):
            return f"debug={prefixes[i][1]}"
    return None


def expand_overrides(overrides: Sequence[str]) -> list[list[str]]:
    """Hydra sweep overrides (``a=1,2``) expanded into every combination, as the basic sweeper does."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
               else [o.input_line] for o in parsed]
    return [list(c) for c in itertools.product(*choices)] if choices else [[]]


@contextmanager
def hydra_context(conf_dir: Path = CONF_DIR) -> Iterator[None]:
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3", job_name="study"):
        yield


def plan_study(presets: Sequence[str], models: Sequence[str], seeds: Sequence[int] | None,
               overrides: Sequence[str]) -> StudyPlan:
    """Every run of the study with its state; composes configs only (call inside :func:`hydra_context`)."""
    from bench.job import missing_data, not_applicable, plan_job

    plan = StudyPlan()
    inputs_cache: dict = {}  # input runs planned once per (preset, model, seed, overrides)
    seed_sets = [[f"seed={s}"] for s in seeds] if seeds else [[]]
    job_overrides = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]  # launcher's
    for model, preset, seed_set, extra in itertools.product(models, presets, seed_sets, expand_overrides(job_overrides)):
        cfg = compose_job(preset, model, [*seed_set, *extra])
        why = not_applicable(cfg)
        if why:
            plan.runs.append(RunState(preset, model, int(cfg.seed), None, "-", "n/a", why))
            continue
        if (gap := missing_data(cfg)) is not None:
            plan.runs.append(RunState(preset, model, int(cfg.seed), None, "-", "missing data",
                                      str(gap).splitlines()[0]))
            continue
        failed_dir = Path(cfg.paths.results_dir) / "failed"
        plan.needs[preset] = needs_of(cfg)[0]
        pending = [f"{i.state}: {i.name}" for i in needed_runs(cfg, plan_job, [*seed_set, *extra], inputs_cache)
                   if i.state != "done"] if plan.needs[preset] else []
        for run in plan_job(cfg, preset):
            score = ""
            if is_finished(run.path):
                state, detail, score = "done", str(run.path), record_score(load_record(run.path))
            elif (failure := latest_failure(failed_dir, run.spec.name)) is not None:
                state, detail = "failed", failure_line(failure)
            else:
                state, detail = "missing", ""
            plan.runs.append(RunState(preset, model, int(cfg.seed), run.rank, run.spec.name, state, detail, pending,
                                      score))
    return plan


def stages(presets: Sequence[str], needs: dict[str, list[str]]) -> list[list[str]]:
    """The presets in waves: a preset runs one wave after the last of the study's presets it reads."""
    level: dict[str, int] = {}

    def depth(preset: str, seen: tuple[str, ...] = ()) -> int:
        if preset in seen:
            raise ConfigError(f"needs.presets form a cycle: {' -> '.join((*seen, preset))}")
        if preset not in level:
            inside = [q for q in needs.get(preset, []) if q in presets]
            level[preset] = 1 + max((depth(q, (*seen, preset)) for q in inside), default=-1)
        return level[preset]

    for preset in presets:
        depth(preset)
    return [[p for p in presets if level[p] == i] for i in range(max(level.values(), default=-1) + 1)]


def job_groups(jobs: set[tuple[str, str, int]], presets: Sequence[str], models: Sequence[str]
               ) -> list[tuple[list[str], list[str], list[int]]]:
    """(preset, model, seed) jobs as few Hydra multiruns (each a product presets x models x seeds) as this finds."""
    per_model: dict[tuple[tuple[str, ...], tuple[int, ...]], list[str]] = {}
    for model in models:
        mine = {(p, s) for p, m, s in jobs if m == model}
        chosen = [p for p in presets if any(q == p for q, _ in mine)]
        seeds = sorted({s for _, s in mine})
        if mine == {(p, s) for p in chosen for s in seeds}:
            parts = [(tuple(chosen), tuple(seeds))] if mine else []
        else:  # some jobs of this model are held back: one multirun per preset
            parts = [((p,), tuple(sorted(s for q, s in mine if q == p))) for p in chosen]
        for part in parts:
            per_model.setdefault(part, []).append(model)
    return [(list(p), ms, list(s)) for (p, s), ms in per_model.items()]


def failure_line(path: Path) -> str:
    try:
        failure = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return f"{path} (unreadable)"
    message = str(failure.get("message") or failure.get("error") or "").strip().splitlines()
    return f"{failure.get('error_type', 'Error')}: {message[0] if message else ''} ({path})"


SCORE_KEYS = (("score", "score"), ("macro_over_relations", "P@1 macro"), ("accuracy", "accuracy"))


def record_score(record: dict) -> str:
    """The run's headline number on its report split, e.g. ``val score 0.8125`` (LAMA: ``test P@1 macro ...``)."""
    split = record.get("report_split")
    overall = ((record.get("metrics") or {}).get(split) or {}).get("overall") or {}
    for key, label in SCORE_KEYS:
        if isinstance(overall.get(key), int | float):
            return f"{split} {label} {overall[key]:.4f}"
    return f"{split}: no score"
