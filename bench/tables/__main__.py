"""``python -m bench.tables``: rebuild results/tables/ (Markdown, LaTeX, CSV) from results/runs/.

Filters: ``--models a,b`` and ``--tags smoke,none`` (``none``: records without a tag) select records;
``--only lama34k,sensitivity_p17`` builds some specs; ``--study lmbff`` only the specs that name that study
(``study:``), so one study's rebuild never touches another's tables. A filter value that matches nothing
stops the build (exit 2) naming the known values. A corrupted record is reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError
from bench.paths import paper_dir, results_dir
from bench.tables.builder import build_table, load_published
from bench.tables.frame import Frames, build_frames
from bench.tables.load import load_records, wanted
from bench.tables.render import write_table
from bench.tables.spec import TABLES_DIR, load_specs


class FilterError(BenchError):
    """A --models / --tags / --only / --study value matches nothing; names the known values."""


def _list(text: str | None) -> list[str] | None:
    return [t for t in text.split(",") if t] if text else None


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--results", type=Path, default=results_dir(), help="results folder (runs/ inside)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <results>/tables)")
    p.add_argument("--models", default=None, help="comma-separated model names to keep")
    p.add_argument("--tags", default=None, help="comma-separated tags to keep ('none' = untagged records)")
    p.add_argument("--only", default=None, help="comma-separated spec names (or file stems) to build")
    p.add_argument("--study", default=None, help="build only the specs that name this study (study: in the YAML)")
    p.add_argument("--specs", type=Path, default=None, help="spec folder")
    return p


def _unmatched(flag: str, values: list[str] | None, known: set[str], fix: str) -> None:
    missing = [v for v in values or [] if v not in known]
    if missing:
        listed = ", ".join(sorted(known)) or "none"
        raise FilterError(f"{flag} {','.join(missing)} matches nothing; known values: {listed}\n  fix: {fix}")


def filtered_frames(runs_dir: Path, models=None, tags=None) -> Frames:
    """The records kept by ``models`` / ``tags``; a value that matches no record raises :class:`FilterError`
    (a typo would otherwise rewrite every table without our rows)."""
    records, problems = load_records(runs_dir)
    seen_models = {str(r["spec"].get("model")) for _, r in records}
    seen_tags = {"none" if r["spec"].get("tag") is None else str(r["spec"]["tag"]) for _, r in records}
    where = f"records under {runs_dir}"
    _unmatched("--models", models, seen_models, f"name models that have {where}, or give no filter")
    _unmatched("--tags", tags, seen_tags, f"name tags of {where} ('none' = untagged), or give no filter")
    kept = [(p, r) for p, r in records if wanted(r["spec"].get("model"), models) and wanted(r["spec"].get("tag"), tags)]
    if (models or tags) and not kept:
        raise FilterError(f"--models {','.join(models or ['*'])} with --tags {','.join(tags or ['*'])} keeps no "
                          f"record under {runs_dir}\n  fix: models with records: {', '.join(sorted(seen_models))}; "
                          f"tags: {', '.join(sorted(seen_tags))}")
    return build_frames(kept, problems)


def chosen_specs(specs_dir: Path, only=None, study: str | None = None, load=load_specs) -> list[dict]:
    """The specs ``--only`` and ``--study`` keep; a name that matches no spec raises :class:`FilterError`."""
    every = load(specs_dir)
    names = {s["name"] for s in every} | {Path(s["file"]).stem for s in every}
    _unmatched("--only", only, names, f"name specs under {specs_dir}")
    studies = {name for s in every for name in s.get("study", [])}
    _unmatched("--study", [study] if study else None, studies, "name a study that some spec lists under study:")
    return [s for s in every if (only is None or s["name"] in only or Path(s["file"]).stem in only)
            and (study is None or study in s.get("study", []))]


def build_all(results: Path, out: Path, specs_dir: Path = TABLES_DIR, models=None, tags=None, only=None,
              published_dir: Path | None = None, study: str | None = None) -> tuple[list[Path], list]:
    """Build every spec (those of ``study``); returns the written paths and the skipped records' problems."""
    specs = chosen_specs(specs_dir, only, study)
    frames = filtered_frames(results / "runs", models, tags)
    published_dir = published_dir or paper_dir()
    published = every = None
    files = sorted(Path(published_dir).glob("*.csv"))
    if files:
        import pandas as pd

        published = every = pd.concat([load_published(f) for f in files], ignore_index=True)
        if models:
            published = published[published["model"].isin(models)]
    written: list[Path] = []
    for spec in specs:  # published.all_models: the paper's rows stay whatever --models keeps
        table = build_table(spec, frames, every if (spec.get("published") or {}).get("all_models") else published)
        if table is not None:
            written += write_table(table, out)
    return written, frames.problems


def unwritable(out: Path, err: OSError) -> str:
    """The one-line error for an output folder that cannot be written."""
    return (f"error: cannot write to {err.filename or out} ({err.strerror or err})\n"
            f"  fix: pass --out a writable folder (or BENCH_RESULTS_DIR / --results), or fix the permissions of {out}")


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    out = args.out or args.results / "tables"
    try:
        written, problems = build_all(args.results, out, args.specs or TABLES_DIR, _list(args.models),
                                      _list(args.tags), _list(args.only), study=args.study)
    except FilterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only or missing output folder: one line, not a traceback
        print(unwritable(out, err), file=sys.stderr)
        return 2
    for problem in problems:
        print(f"skipped record {problem}", file=sys.stderr)
    if not written:
        print(f"no finished records under {args.results / 'runs'} for these specs: nothing to tabulate")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
