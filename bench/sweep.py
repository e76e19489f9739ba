"""Resumable sweep: experiment presets x models x prompt ranks -> run specs, each run in-process.

``python -m bench.sweep --study lama --models tiny-bert,tiny-gpt2 [hydra overrides ...]``

- A study is every ``conf/experiment/*.yaml`` whose ``sweep.study`` lists it (or ``--presets``).
- A preset's ``sweep`` node says how it expands: ``ranks`` (null: one run; ``all``: one run per
  prompt rank of its template's set; or a list) and ``archs`` (only models of these architectures).
- Each spec runs through :func:`bench.run.execute`; a spec whose finished record exists is
  skipped before anything loads, so a rerun of a finished sweep takes seconds.
- Records are written atomically by ``execute``: killing the sweep loses only the spec in flight.
- A crashed spec is kept in ``results/failed/`` and the sweep goes on; it exits 1 listing them.
- Specs are ordered model by model, frozen-backbone specs first; a frozen-backbone spec reuses the
  backbone the previous spec loaded (same model config, device and dtype), restoring the RNG state
  a fresh load would leave. Once a model's weights are missing, its other specs are not tried.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm.auto import tqdm

from bench.errors import BenchError, MissingWeightsError
from bench.paths import REPO_ROOT
from bench.records import RunSpec, is_finished, record_path, write_failure

log = logging.getLogger("bench.sweep")
CONF_DIR = REPO_ROOT / "conf"


@dataclass
class SweepSpec:
    """One run of the sweep: the preset and model it came from and its composed config."""

    preset: str
    model: str
    rank: int | None
    cfg: DictConfig = field(repr=False)
    spec: RunSpec = field(repr=False)
    path: Path = field(repr=False)


@dataclass
class SweepPlan:
    specs: list[SweepSpec]
    not_applicable: list[tuple[str, str, str]]  # (preset, model, why)
    unavailable: list[tuple[str, str, str]]  # (preset, model, why): the preset does not compose


@dataclass
class SweepResult:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (spec name, error)
    backbone_reuses: int = 0


def study_presets(study: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """Presets whose ``sweep.study`` lists ``study``, in file-name order."""
    found = []
    for path in sorted((conf_dir / "experiment").glob("*.yaml")):
        studies = (OmegaConf.load(path).get("sweep") or {}).get("study") or []
        if study in ([studies] if isinstance(studies, str) else list(studies)):
            found.append(path.stem)
    return found


def prompt_ranks(template_cfg: DictConfig, relations: Sequence[str] | str | None) -> list[int]:
    """Every rank a template config can select: per-relation prompt-set ranks or the indices of ``texts``."""
    kind = template_cfg.get("kind")
    if kind == "fixed" and template_cfg.get("texts"):
        return list(range(len(template_cfg.texts)))
    if kind == "prompt_set":
        from bench.io_utils import read_jsonl
        from bench.lama.data import select_relations
        from bench.prompts import prompt_set_path

        wanted = set(select_relations(relations or "all"))
        rows = read_jsonl(prompt_set_path(str(template_cfg.prompt_set)), required=("relation", "rank"))
        return sorted({int(r["rank"]) for r in rows if r["relation"] in wanted})
    raise BenchError(f"template {template_cfg.get('name')!r} (kind {kind}) has no ranks to sweep over")


def _ranks(cfg: DictConfig) -> list[int | None]:
    ranks = (cfg.get("sweep") or {}).get("ranks")
    if ranks is None:
        return [None]
    if ranks == "all":
        relations = cfg.task.get("relations", "all")
        return list(prompt_ranks(cfg.template, OmegaConf.to_container(relations) if not isinstance(relations, str)
                                 else relations))
    return [int(r) for r in ranks]


def _applies(cfg: DictConfig) -> str | None:
    """None when the preset applies to the model, else why not."""
    archs = (cfg.get("sweep") or {}).get("archs")
    if archs and cfg.model.get("arch") not in archs:
        return f"only for {', '.join(archs)} models (this is {cfg.model.get('arch')})"
    return None


def compose_run(preset: str, model: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``python -m bench.run experiment=<preset> model=<model> <overrides>`` would run."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    cfg = compose(config_name="config", overrides=[f"experiment={preset}", f"model={model}", *overrides],
                  return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # resolves ${hydra:runtime.cwd} in paths
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def plan(presets: Sequence[str], models: Sequence[str], overrides: Sequence[str] = ()) -> SweepPlan:
    """Expand presets x models x ranks into specs, model by model (call inside :func:`hydra_context`)."""
    from hydra.errors import HydraException

    from bench.run import spec_from_config

    specs, not_applicable, unavailable = [], [], []
    for model in models:
        mine: list[SweepSpec] = []
        for preset in presets:
            try:
                base = compose_run(preset, model, overrides)
            except HydraException as err:
                unavailable.append((preset, model, str(err).splitlines()[0]))
                continue
            why = _applies(base)
            if why:
                not_applicable.append((preset, model, why))
                continue
            for rank in _ranks(base):
                cfg = deepcopy(base)
                if rank is not None:
                    with open_dict(cfg):
                        cfg.template.rank = rank
                spec = spec_from_config(cfg)
                mine.append(SweepSpec(preset, model, rank, cfg, spec,
                                      record_path(Path(cfg.paths.results_dir) / "runs", spec)))
        specs += sorted(mine, key=lambda s: tunes_backbone(s.cfg))  # frozen first: they share one backbone
    return SweepPlan(specs, not_applicable, unavailable)


@contextmanager
def hydra_context(conf_dir: Path = CONF_DIR) -> Iterator[None]:
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3", job_name="sweep"):
        yield


def tunes_backbone(cfg: DictConfig) -> bool:
    """Whether the spec's method changes backbone weights (then it gets a fresh, uncached backbone)."""
    component = cfg.method.get("component") or {}
    if component.get("tunes_backbone") is not None:
        return bool(component.get("tunes_backbone"))
    from hydra.utils import get_class

    return bool(getattr(get_class(component["_target_"]), "tunes_backbone", False))


def _rng_state() -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states += torch.cuda.get_rng_state_all()
    return states


def _set_rng_state(states: list[torch.Tensor]) -> None:
    torch.set_rng_state(states[0])
    if len(states) > 1:
        torch.cuda.set_rng_state_all(states[1:])


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class BackboneCache:
    """Wraps ``load_backbone``: keeps the last backbone and hands it to the next spec that may reuse it.

    Reuse is allowed (``allow``) only for specs whose method leaves the backbone's weights alone.
    The random state after a load is what a fresh load would leave: if loading draws random
    numbers, the cached post-load state is restored (same seed) or the backbone is loaded anew.
    """

    def __init__(self, loader) -> None:
        self.loader, self.allow, self.hits = loader, False, 0
        self._key: str | None = None
        self._value = None
        self._rng: tuple[list[torch.Tensor], list[torch.Tensor] | None] | None = None

    def drop(self) -> None:
        self._key = self._value = self._rng = None

    def __call__(self, *args, **kwargs):
        key = json.dumps([args, kwargs], sort_keys=True, default=str)
        if self.allow and key == self._key and self._rng is not None:
            before, after = self._rng
            if after is None or _same(_rng_state(), before):
                if after is not None:
                    _set_rng_state(after)
                self.hits += 1
                return self._value
        self.drop()
        before = _rng_state()
        backbone = self.loader(*args, **kwargs)
        after = _rng_state()
        if self.allow:
            self._key, self._value = key, backbone
            self._rng = (before, None if _same(before, after) else after)
        return backbone


class CandidateCache:
    """Wraps ``build_candidates``: the LAMA candidate set of a (tokenizer object, word list, family)
    is built once; with a reused backbone every later spec of the model gets it for free."""

    def __init__(self, builder) -> None:
        self.builder, self.hits = builder, 0
        self._entries: dict[tuple, tuple[object, object]] = {}  # key -> (tokenizer kept alive, candidates)

    def __call__(self, words, tokenizer, family):
        key = (id(tokenizer), tuple(words), family)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is tokenizer:
            self.hits += 1
            return entry[1]
        candidates = self.builder(words, tokenizer, family)
        self._entries = {key: (tokenizer, candidates)} | {k: v for k, v in self._entries.items() if v[0] is tokenizer}
        return candidates


@contextmanager
def reuse_backbones() -> Iterator[BackboneCache]:
    """Patch ``bench.backbones.loading.load_backbone`` (looked up by ``execute`` at call time) and
    the LAMA runner's ``build_candidates`` (one candidate set per tokenizer and word list)."""
    import bench.backbones.loading as loading
    import bench.lama.runner as runner

    original, original_candidates = loading.load_backbone, runner.build_candidates
    cache = BackboneCache(original)
    loading.load_backbone, runner.build_candidates = cache, CandidateCache(original_candidates)
    try:
        yield cache
    finally:
        loading.load_backbone, runner.build_candidates = original, original_candidates
        cache.drop()


def _failure_file(results: Path, name: str) -> Path | None:
    found = sorted((results / "failed").glob(f"{name}.*.json"))
    return found[-1] if found else None


def run_plan(sweep: SweepPlan, force: bool = False, reuse: bool = True) -> SweepResult:
    """Run every spec of the plan that has no finished record (all of them with ``force``)."""
    from bench.run import execute

    result = SweepResult()
    no_weights: dict[str, str] = {}  # model -> first spec that found its weights missing
    todo, result.skipped = [], []
    for item in sweep.specs:
        (todo.append(item) if force or not is_finished(item.path) else result.skipped.append(item.spec.name))
    log.info("%d specs: %d finished already, %d to run", len(sweep.specs), len(result.skipped), len(todo))
    with reuse_backbones() if reuse else _no_cache() as cache:
        bar = tqdm(todo, desc="sweep", unit="run", dynamic_ncols=True)
        for item in bar:
            bar.set_postfix_str(item.spec.name, refresh=True)
            if item.model in no_weights:
                result.failed.append((item.spec.name, f"not tried: weights of {item.model} are missing "
                                                      f"(see {no_weights[item.model]})"))
                continue
            if cache is not None:
                cache.allow = not tunes_backbone(item.cfg)
                if not cache.allow:
                    cache.drop()  # free the cached weights before a tuned copy is loaded
            cfg = deepcopy(item.cfg)
            if force:
                with open_dict(cfg):
                    cfg.force = True
            try:
                path = execute(cfg)
            except KeyboardInterrupt:
                log.warning("interrupted during %s: finished records are kept; rerun to resume", item.spec.name)
                raise
            except Exception as err:  # noqa: BLE001 - one spec's crash must not stop the sweep
                results = Path(cfg.paths.results_dir)
                if isinstance(err, BenchError):  # execute keeps non-BenchError crashes itself
                    write_failure(results / "failed", item.spec, err, OmegaConf.to_container(cfg))
                if isinstance(err, MissingWeightsError):
                    no_weights[item.model] = item.spec.name
                first_line = str(err).splitlines()[0] if str(err) else ""
                result.failed.append((item.spec.name, f"{type(err).__name__}: {first_line}"))
                log.error("%s failed (%s); details: %s", item.spec.name, result.failed[-1][1],
                          _failure_file(results, item.spec.name))
                continue
            result.ran.append(item.spec.name)
            log.info("%s -> %s", item.spec.name, path)
        bar.close()
        result.backbone_reuses = cache.hits if cache is not None else 0
    return result


@contextmanager
def _no_cache() -> Iterator[None]:
    yield None


def summary_lines(sweep: SweepPlan, result: SweepResult, results_dir: Path) -> list[str]:
    lines = [f"sweep: {len(result.ran)} run, {len(result.skipped)} already finished, {len(result.failed)} failed "
             f"(records: {results_dir / 'runs'}; backbone reused {result.backbone_reuses} times)"]
    lines += [f"  not applicable: {p} x {m}: {why}" for p, m, why in sweep.not_applicable]
    lines += [f"  unavailable: {p} x {m}: {why}" for p, m, why in sweep.unavailable]
    if result.failed:
        lines.append(f"failed specs (tracebacks in {results_dir / 'failed'}):")
        lines += [f"  {name}: {error}" for name, error in result.failed]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every spec of a study, skipping finished runs.")
    parser.add_argument("--study", default="lama", help="presets whose sweep.study lists this name")
    parser.add_argument("--presets", default=None, help="comma-separated presets (instead of --study)")
    parser.add_argument("--models", default="bert-base-cased", help="comma-separated conf/model names")
    parser.add_argument("--force", action="store_true", help="rerun finished specs (old records kept as .bak)")
    parser.add_argument("--dry-run", action="store_true", help="list the specs and whether each is finished")
    parser.add_argument("--no-reuse", action="store_true", help="load the backbone anew for every spec")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every spec, e.g. debug=smoke device=cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    presets = args.presets.split(",") if args.presets else study_presets(args.study)
    models = [m for m in args.models.split(",") if m]
    if not presets:
        print(f"error: no preset in {CONF_DIR / 'experiment'} lists study {args.study!r}", file=sys.stderr)
        return 2
    try:
        with hydra_context():
            sweep = plan(presets, models, args.overrides)
            if args.dry_run:
                for s in sweep.specs:
                    print(f"{'done' if is_finished(s.path) else 'todo'}  {s.spec.name}  ({s.preset})")
                print("\n".join(summary_lines(sweep, SweepResult(), Path("results"))[1:]))
                return 0
            result = run_plan(sweep, force=args.force, reuse=not args.no_reuse)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results_dir = Path(sweep.specs[0].cfg.paths.results_dir) if sweep.specs else Path("results")
    print("\n".join(summary_lines(sweep, result, results_dir)))
    return 1 if result.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
