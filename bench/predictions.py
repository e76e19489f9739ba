"""Per-example predictions beside each record, and paired comparisons of two runs.

A runner returns ``per_example`` rows in its payload; the job writes them beside the record as
``<record stem>.predictions.jsonl.gz`` (gzip'd JSONL, one row per scored example:
``{"id", "split", "gold", "prediction", "scores"}``; ``scores`` holds one score per label / choice in
label order, or null where the candidate set is a vocabulary, as in LAMA) before the record, atomically,
and the record keeps ``predictions: {file, sha256, n, splits}``. :func:`read_predictions` refuses a file
whose checksum is not the record's.

``python -m bench.predictions compare A B [--split val]`` (record paths or names under results/runs)
prints the paired accuracy of both runs on the examples they share, how often they agree, and a paired
bootstrap interval of the accuracy difference B - A (examples resampled with replacement).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.errors import BenchError, DataError
from bench.io_utils import atomic_write_bytes, sha256_file
from bench.paths import results_dir
from bench.records import is_finished, load_record

SUFFIX = ".predictions.jsonl.gz"


def predictions_path(record_path: Path) -> Path:
    record_path = Path(record_path)
    return record_path.with_name(record_path.name.removesuffix(".json") + SUFFIX)


def row(uid: str, split: str, gold: Any, prediction: Any, scores: Sequence[float] | None) -> dict:
    """One example's line: its id, split, gold and predicted label / choice index, and its scores."""
    return {"id": str(uid), "split": split, "gold": gold, "prediction": prediction,
            "scores": None if scores is None else [float(s) for s in scores]}


def encode(rows: Iterable[Mapping]) -> bytes:
    """Rows as gzip'd JSONL; the gzip header carries no time or name, so equal rows give equal bytes."""
    text = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def write_predictions(record_path: Path, rows: Sequence[Mapping], force: bool = False) -> dict:
    """Write a run's rows beside its record (call before the record); return the record's reference.

    A file beside a finished record is kept unless ``force`` (then moved to ``.bak`` with the record);
    one beside no finished record is a crashed run's and is moved aside; a parallel worker that wrote
    the same run first wins (FileExistsError, as for records)."""
    path = predictions_path(record_path)
    if path.exists() and (force or not is_finished(record_path)):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path.rename(path.with_name(f"{path.name}.{stamp}.bak"))
    payload = encode(rows)
    try:
        atomic_write_bytes(path, payload, exclusive=True)
    except FileExistsError:
        raise FileExistsError(f"{path} was written by another worker while this run went on; kept it") from None
    splits: dict[str, int] = {}
    for r in rows:
        splits[r["split"]] = splits.get(r["split"], 0) + 1
    return {"file": path.name, "sha256": sha256_file(path), "n": len(rows), "splits": splits}


def read_predictions(record_path: Path) -> list[dict]:
    """The rows of a record's predictions file, checked against the record's checksum."""
    record = load_record(record_path)
    ref = record.get("predictions")
    if not ref:
        raise DataError("the record has no predictions file (written before issue 26)", file=record_path,
                        field="predictions", fix="rerun its spec with force=true")
    path = Path(record_path).with_name(ref["file"])
    if not path.is_file():
        raise DataError("the predictions file is missing", file=path, field="predictions.file",
                        fix="rerun its spec with force=true")
    if sha256_file(path) != ref["sha256"]:
        raise DataError("the predictions file's sha256 is not the one its record holds (changed after the run)",
                        file=path, field="predictions.sha256", fix="rerun its spec with force=true")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def correct(r: Mapping) -> bool:
    return r["prediction"] == r["gold"]


def paired_bootstrap(a: Sequence[bool], b: Sequence[bool], samples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of mean(b) - mean(a) over ``samples`` resamplings of the paired examples."""
    n = len(a)
    rng = random.Random(seed)
    diffs = []
    for _ in range(samples):
        picks = [rng.randrange(n) for _ in range(n)]
        diffs.append(sum(b[i] - a[i] for i in picks) / n)
    diffs.sort()
    tail = (1 - level) / 2
    return diffs[int(tail * samples)], diffs[min(samples - 1, int((1 - tail) * samples))]


def compare(rows_a: Sequence[Mapping], rows_b: Sequence[Mapping], split: str | None = None,
            samples: int = 1000, seed: int = 0) -> dict:
    """Paired accuracy, agreement and the bootstrap interval of B - A on the examples both runs scored."""
    by_a = {(r["split"], r["id"]): r for r in rows_a if split is None or r["split"] == split}
    by_b = {(r["split"], r["id"]): r for r in rows_b if split is None or r["split"] == split}
    shared = [k for k in by_a if k in by_b]
    if not shared:
        raise BenchError(f"the two runs share no scored example{f' on split {split}' if split else ''}")
    labelled = [k for k in shared if by_a[k]["gold"] is not None]
    if any(by_a[k]["gold"] != by_b[k]["gold"] for k in labelled):
        raise BenchError("the two runs disagree on gold labels of the same examples: not the same data")
    acc_a = [correct(by_a[k]) for k in labelled]
    acc_b = [correct(by_b[k]) for k in labelled]
    out = {"n_shared": len(shared), "n_only_a": len(by_a) - len(shared), "n_only_b": len(by_b) - len(shared),
           "n_labelled": len(labelled),
           "agreement": sum(by_a[k]["prediction"] == by_b[k]["prediction"] for k in shared) / len(shared)}
    if labelled:
        out["accuracy_a"], out["accuracy_b"] = sum(acc_a) / len(labelled), sum(acc_b) / len(labelled)
        out["difference"] = out["accuracy_b"] - out["accuracy_a"]
        out["interval"] = list(paired_bootstrap(acc_a, acc_b, samples, seed))
    return out


def _record_path(name: str, results: Path) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    found = sorted((results / "runs").rglob(f"{name.removesuffix('.json')}.json"))
    if not found:
        raise BenchError(f"no record {name!r}: give a record path or a run name under {results / 'runs'}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.predictions", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="paired accuracy, agreement and bootstrap interval of two runs")
    cmp.add_argument("a", help="record path or run name")
    cmp.add_argument("b", help="record path or run name")
    cmp.add_argument("--split", default=None, help="only this split (default: every split both scored)")
    cmp.add_argument("--samples", type=int, default=1000, help="bootstrap resamplings")
    cmp.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    cmp.add_argument("--results", default=str(results_dir()), help="results folder for run names")
    args = parser.parse_args(argv)
    try:
        paths = [_record_path(n, Path(args.results)) for n in (args.a, args.b)]
        result = compare(read_predictions(paths[0]), read_predictions(paths[1]), args.split, args.samples, args.seed)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"A: {paths[0].stem}\nB: {paths[1].stem}")
    print(f"{result['n_shared']} shared examples ({result['n_labelled']} with gold labels; only in A: "
          f"{result['n_only_a']}, only in B: {result['n_only_b']}); agreement {result['agreement']:.4f}")
    if "difference" in result:
        low, high = result["interval"]
        print(f"accuracy A {result['accuracy_a']:.4f}, B {result['accuracy_b']:.4f}; B - A {result['difference']:+.4f} "
              f"(paired bootstrap 95% interval [{low:+.4f}, {high:+.4f}], {args.samples} resamplings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
