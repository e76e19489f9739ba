"""Studies: a YAML (``conf/study/<name>.yaml``) of presets x models x seeds, run through Hydra's multirun.

``python -m bench.study run lama --models tiny-bert,tiny-gpt2 [--launcher local|slurm] [overrides]``
launches ``python -m bench.run -m experiment=... model=... ranks=preset`` (one job per preset, model
and seed; ``bench.job``), then lists what finished and what failed, and exits 1 naming failed runs.
Presets that read other runs (``needs.presets``, :mod:`bench.inputs`) run in later stages: one
multirun per stage, on any launcher, each started when the one before has finished; a job whose
inputs did not all finish is held back and named, the others go on.
``python -m bench.study status lama --models ...`` lists done / missing / failed runs without running
anything; ``status`` without a study lists every record and failure under the results folder.
A rerun of a finished study launches nothing. Names that match nothing exit 2 with the closest ones.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError, ConfigError
from bench.inputs import compose_job
from bench.paths import REPO_ROOT, results_dir
from bench.study_plan import (
    CONF_DIR,
    LAUNCHERS,
    RunState,
    StudyPlan,
    check_name,
    debug_override,
    expand_overrides,
    hydra_context,
    job_groups,
    load_study,
    plan_study,
    record_score,
    stages,
)
from bench.study_status import all_records_status, clear_failed, failure_report, status_lines

# the names tests and scripts import from here (the planning and status lines live in bench.study_plan / study_status)
__all__ = ["CONF_DIR", "LAUNCHERS", "RunState", "StudyPlan", "all_records_status", "check_name", "clear_failed",
           "compose_job", "debug_override", "expand_overrides", "failure_report", "hydra_context", "job_groups",
           "launch", "load_study", "main", "plan_study", "record_score", "stages", "status_lines"]


def launch(presets: Sequence[str], models: Sequence[str], seeds: Sequence[int] | None, launcher: str,
           overrides: Sequence[str]) -> int:
    """One Hydra multirun over presets x models (x seeds); returns its exit code."""
    command = [sys.executable, "-m", "bench.run", "-m", f"experiment={','.join(presets)}",
               f"model={','.join(models)}", "ranks=preset"]
    if seeds:
        command.append(f"seed={','.join(str(s) for s in seeds)}")
    if launcher != "basic":
        command.append(f"hydra/launcher={launcher}")
    command += list(overrides)
    if not any(o.startswith(("paths.results_dir=", "paths.root=")) for o in overrides):
        command.append(f"paths.results_dir={results_dir()}")  # the folder status and the summary read
    print("launching: " + " ".join(command[1:]), flush=True)
    return subprocess.call(command, cwd=str(REPO_ROOT))


def _study_args(args) -> tuple[dict, list[str], list[int] | None, list[str]]:
    study = load_study(args.study)
    if args.presets:
        chosen = [p for p in args.presets.split(",") if p]
        for preset in chosen:
            if preset not in study["presets"]:
                close = difflib.get_close_matches(preset, study["presets"], n=3, cutoff=0.5)
                raise ConfigError(f"preset {preset!r} is not in study {args.study!r}"
                                  + (f"; did you mean {', '.join(close)}?" if close else ""))
        study["presets"] = chosen
    models = [m for m in (args.models or ",".join(study["models"])).split(",") if m]
    for model in models:
        check_name("model", model, CONF_DIR / "model")
    overrides = list(args.overrides)
    debug = debug_override(study, models, overrides)
    if debug:
        print(f"models {', '.join(models)}: adding {debug} (give debug=none for full-length runs)")
        overrides.append(debug)
    seeds = study.get("debug_seeds", study.get("seeds")) if debug else study.get("seeds")
    if getattr(args, "seeds", None):
        try:  # --seeds: a subset (or others) instead of the study's
            seeds = [int(s) for s in args.seeds.split(",") if s]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. --seeds 42,43") from None
    if seeds and not any(o.split("=")[0] == "needs.seeds" for o in overrides):
        overrides.append(f"needs.seeds=[{','.join(str(s) for s in seeds)}]")  # the runs a later stage reads
    return study, models, seeds, overrides


def cmd_status(args) -> int:
    if not args.study:
        return all_records_status(Path(args.results), clear=args.clear_failed)
    study, models, seeds, overrides = _study_args(args)
    with hydra_context():
        plan = plan_study(study["presets"], models, seeds, overrides)
    print("\n".join(status_lines(plan, verbose=not args.quiet)))
    if args.clear_failed:
        clear_failed([r.name for r in plan.runs if r.state == "failed"], Path(after_results(overrides)) / "failed")
    elif plan.count("failed"):
        print("(python -m bench.study status <study> --clear-failed moves their failure files aside)")
    return 0


def cmd_run(args) -> int:
    from bench.study_join import plan_joins

    study, models, seeds, overrides = _study_args(args)
    if args.force:
        overrides.append("force=true")
    with hydra_context():
        before = plan_study(study["presets"], models, seeds, overrides)
    waves = stages(study["presets"], before.needs)
    code, held = 0, []
    for i, wave in enumerate(waves):
        if i:  # re-plan: the inputs of this wave were made by the waves before
            with hydra_context():
                now = plan_study(wave, models, seeds, overrides)
        else:
            now = StudyPlan([r for r in before.runs if r.preset in wave], before.needs)
        pending = [r for r in now.runs if r.state in ("missing", "failed") or (args.force and r.state == "done")]
        jobs = {(r.preset, r.model, r.seed) for r in pending}
        blocked = {(r.preset, r.model, r.seed): r.inputs_pending for r in pending if r.inputs_pending}
        for (preset, model, seed), why in blocked.items():
            held.append(f"  {preset} x {model} seed{seed}: not started, {len(why)} input runs not finished: "
                        + "; ".join(why[:6]) + (f"; ... ({len(why) - 6} more)" if len(why) > 6 else ""))
            print("held back" + held[-1][1:], flush=True)
        runnable = jobs - set(blocked)
        if not runnable:
            continue
        with hydra_context():  # jobs that differ only in seed, whose soft prompts train together: one job (bench.study_join)
            joins = plan_joins(runnable, overrides, expand_overrides, enabled=not args.no_join)
        groups = job_groups(joins.alone(), wave, models)
        label = f"stage {i + 1} of {len(waves)}: " if len(waves) > 1 else ""
        print(f"study {args.study}: {label}{sum(1 for r in pending if (r.preset, r.model, r.seed) in runnable)} of "
              f"{len(now.runs)} runs to do ({len(runnable)} jobs: {', '.join(p for p in wave if any(j[0] == p for j in runnable))}"
              f"; launcher {args.launcher})", flush=True)
        for line in joins.lines():
            print(line, flush=True)
        for presets, todo_models, todo_seeds in groups:
            code = launch(presets, todo_models, todo_seeds if seeds else None, args.launcher, overrides) or code
        for presets, todo_models, first_seed, joint_seeds in joins.launches():
            code = launch(presets, todo_models, first_seed, args.launcher, [*overrides, *joint_seeds]) or code
    if any(r.state in ("missing", "failed") or args.force for r in before.runs):
        with hydra_context():
            after = plan_study(study["presets"], models, seeds, [o for o in overrides if o != "force=true"])
    else:
        after = before
    results = Path(after_results(overrides))
    ran = sum(1 for b, a in zip(before.runs, after.runs, strict=True) if a.state == "done" and
              (b.state != "done" or args.force))
    print(f"study {args.study}: {ran} run now, {before.count('done') if not args.force else 0} finished before, "
          f"{after.count('failed')} failed, {after.count('missing')} missing, {after.count('n/a')} not applicable, {after.count('missing data')} missing data "
          f"(records: {results / 'runs'})")
    failures = failure_report(after, results / "failed")
    if failures:
        print(f"failed runs (tracebacks in {results / 'failed'}):")
        print("\n".join(failures))
    if held:
        print("runs held back because an input run they read did not finish:")
        print("\n".join(held))
    return 1 if after.count("failed") or after.count("missing") or code else 0


def after_results(overrides: Sequence[str]) -> str:
    for o in overrides:
        if o.startswith("paths.results_dir="):
            return o.split("=", 1)[1]
    return str(results_dir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.study", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every unfinished job of a study (Hydra multirun)")
    status = sub.add_parser("status", help="list done / missing / failed runs; nothing runs")
    for p in (run, status):
        p.add_argument("study", nargs="?" if p is status else None, help="conf/study/<name>.yaml")
        p.add_argument("--models", default=None, help="comma-separated conf/model names (default: the study's)")
        p.add_argument("--presets", default=None, help="comma-separated subset of the study's presets")
        p.add_argument("--seeds", default=None, help="comma-separated seeds instead of the study's (later stages read "
                                                     "only these seeds' runs)")
    run.add_argument("--launcher", default="basic", choices=LAUNCHERS,
                     help="basic: this process; local: worker pool (conf/hydra/launcher/local.yaml); slurm; "
                          "submitit (submitit's local executor); one wave per stage on each")
    run.add_argument("--force", action="store_true", help="rerun finished runs (old records kept as .bak)")
    run.add_argument("--no-join", action="store_true", help="one job per seed even where the seeds' soft prompts "
                     "could train together in one job on one frozen backbone (docs/joint-training.md)")
    status.add_argument("--results", default=str(results_dir()), help="results folder (status without a study)")
    status.add_argument("--quiet", action="store_true", help="only the counts")
    status.add_argument("--clear-failed", action="store_true",
                        help="move the failure files of the runs listed as failed to <results>/failed/cleared/")
    parser.epilog = ("Any other argument is a Hydra override for every job, e.g. device=cpu trainer.lr=1e-4. run joins the "
                     "seeds of a soft-prompt preset into one job (bench.study_join); run --no-join: one job per seed")
    args, args.overrides = parser.parse_known_args(argv)
    unknown = [o for o in args.overrides if o.startswith("-") and "=" not in o]
    if unknown:
        parser.error(f"unknown options {unknown}")
    try:
        return cmd_run(args) if args.command == "run" else cmd_status(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
