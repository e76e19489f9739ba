"""SuperGLUE (full train where available, validation sets) and FewGLUE (32-shot train, dev32, unlabeled)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_prep.common import Family, Outputs, Report, Sources, Upstream, numbered_jsonl, run_step
from data_prep.superglue.validate import multirc_counts, normalise

VERSION = "1"
TASKS = ("BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC")

UPSTREAMS = [
    Upstream("fewglue/FewGLUE_32dev/", "THUDM/P-tuning", "f4225d4d8003868b31ed659dfe9732a351ad42d9", "FewGLUE_32dev/"),
    Upstream("fewglue/FewGLUE/", "timoschick/fewglue", "f52d9515de38cad663869c9e25b79107cda1d345", "FewGLUE/"),
    Upstream("superglue/", "nyu-mll/jiant", "789e1c0aafa03bf12342be176228e25152bc6a50", "data/"),
    Upstream("superglue/WiC/", None, note="FewGLUE WiC unlabeled.jsonl (= SuperGLUE WiC train) joined with WiC v1.0 gold "
             "labels (kduxin/firelang 3140591, data/WiC/train/); see mirror PROVENANCE"),
]

Expected = int | tuple[int, int, int]  # rows; MultiRC: (passages, questions, answer options)


def plan() -> list[tuple[str, str, str, str, Expected]]:
    """(task, output, source, split, expected) for every file written."""
    items: list[tuple[str, str, str, str, Expected]] = []
    val: dict[str, Expected] = {"BoolQ": 3270, "CB": 56, "COPA": 100, "MultiRC": (83, 953, 4848), "RTE": 277,
                                "WiC": 638, "WSC": 104}
    for task, n in val.items():
        items.append((task, f"superglue/{task}/val.jsonl", f"fewglue/FewGLUE_32dev/{task}/val.jsonl", "val", n))
    for task, n in {"RTE": 2490, "WiC": 5428, "WSC": 554}.items():
        items.append((task, f"superglue/{task}/train.jsonl", f"superglue/{task}/train.jsonl", "train", n))
    for task in TASKS:
        for split, mrc in (("train", (32, 32, 154)), ("dev32", (32, 32, 167))):
            items.append((task, f"fewglue/{task}/{split}.jsonl", f"fewglue/FewGLUE_32dev/{task}/{split}.jsonl", split,
                          mrc if task == "MultiRC" else 32))
    unlabeled: dict[str, Expected] = {"COPA": 400, "MultiRC": (456, 5131, 27243), "WSC": 554, "WiC": 5428}
    for task, n in unlabeled.items():
        items.append((task, f"fewglue/{task}/unlabeled.jsonl", f"fewglue/FewGLUE/{task}/unlabeled.jsonl", "unlabeled", n))
    return items


# Not obtainable (blobs > 4 MiB or never committed): output -> (upstream size or None, note)
GAPS: dict[str, tuple[int | None, str]] = {
    "superglue/ReCoRD/val.jsonl": (10_000, "ReCoRD validation set (> 4 MiB) unavailable"),
    "superglue/BoolQ/train.jsonl": (9_427, "full labeled train not found"),
    "superglue/CB/train.jsonl": (250, "full labeled train not found"),
    "superglue/COPA/train.jsonl": (400, "full labeled train not found; fewglue/COPA/unlabeled.jsonl has its 400 inputs"),
    "superglue/MultiRC/train.jsonl": (456, "full labeled train (456 passages) not found; unlabeled copy in fewglue/"),
    "superglue/ReCoRD/train.jsonl": (100_730, "full train (> 4 MiB) unavailable"),
    # FewGLUE has "up to 20,000 unlabeled examples" per task; exact sizes of these files were not verified here.
    "fewglue/BoolQ/unlabeled.jsonl": (None, "FewGLUE unlabeled blob > 4 MiB unavailable"),
    "fewglue/CB/unlabeled.jsonl": (None, "FewGLUE unlabeled blob > 4 MiB unavailable"),
    "fewglue/RTE/unlabeled.jsonl": (None, "FewGLUE unlabeled blob > 4 MiB unavailable"),
    "fewglue/ReCoRD/unlabeled.jsonl": (None, "FewGLUE unlabeled blob > 4 MiB unavailable"),
}


def build(src: Sources, outs: Outputs, rep: Report) -> list[dict[str, Any]]:
    for task, out_rel, src_rel, split, expected in plan():
        path = src.path(src_rel)
        labeled = split != "unlabeled"
        rows = [{**normalise(task, row, labeled, path, line), "task": task, "split": split}
                for line, row in numbered_jsonl(path)]
        n = outs.jsonl(out_rel, rows)
        name = out_rel[: -len(".jsonl")]
        if task == "MultiRC":
            assert isinstance(expected, tuple)
            for label, exp, got in zip(("passages", "questions", "answers"), expected, multirc_counts(rows), strict=True):
                rep.check(f"{name} {label}", exp, got)
        else:
            assert isinstance(expected, int)
            rep.check(name, expected, n)
    for out_rel, (size, note) in GAPS.items():
        rep.check(out_rel[: -len(".jsonl")], size, None, gap=note)
    return [{"kind": "missing", "output": k, "upstream_rows": v[0], "reason": v[1]} for k, v in GAPS.items()]


FAMILY = Family("superglue", VERSION, "superglue", UPSTREAMS, Path(__file__).with_name("SHA256SUMS"), build)


def prepare(mirror: Path | None = None, out: Path | None = None, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Build data/superglue/ and data/fewglue/ (see README.md); return counts. kwargs: download, quiet, write_sums."""
    return run_step(FAMILY, mirror, out, force, **kwargs)
