"""LM-BFF's k-shot splits (``data/lm-bff``, written by ``python -m data_prep lm_bff``) as examples.

A split is a data seed: ``16-<seed>`` holds ``train`` and ``dev`` (16 examples per class each, from
princeton-nlp/LM-BFF ``data/k-shot``); the run seed picks the split, so 5 seeds = LM-BFF's 5 splits.
``test`` is LM-BFF's test set: SST-2's 872 GLUE dev sentences (the same file in every split) and, for
SNLI, SNLI 1.0 *dev* in raw text (9,842 pairs, ``SNLI/test.jsonl``, fetched by ``python -m data_prep
lm_bff --full --download``; offline it is missing and the run stops with "missing data"). Variant
``k16_esnli`` scores e-SNLI's tokenised copy of SNLI 1.0 *test* (9,824 pairs) instead: a separately
named variant, never in the paper's columns. ``task.test_file`` points at another file.

Label names follow LM-BFF's processors: SST-2 ``0``/``1`` (negative/positive), SNLI
``contradiction``/``entailment``/``neutral`` (this order groups the demonstrations, as in LM-BFF).
Fields: SST-2 ``sentence``; SNLI ``premise``, ``hypothesis``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError, MissingDataError
from bench.io_utils import read_jsonl
from bench.paths import data_dir
from bench.superglue.data import Example

LABELS: dict[str, tuple[str, ...]] = {"SST-2": ("0", "1"), "SNLI": ("contradiction", "entailment", "neutral")}
FIELDS: dict[str, tuple[str, ...]] = {"SST-2": ("sentence",), "SNLI": ("premise", "hypothesis")}
SPLITS = ("train", "dev", "test")
VARIANTS = ("k16", "k16_esnli")  # task.variant: LM-BFF's K = 16 splits (k16_esnli: SNLI test = e-SNLI's copy)
TEST_FILES = {("SNLI", "k16"): "test.jsonl", ("SNLI", "k16_esnli"): "test_esnli.jsonl"}  # under SNLI/
SNLI_FETCH = "python -m data_prep lm_bff --full --download"
SEEDS = (13, 21, 42, 87, 100)
PREP_FIX = "run `make data` (python -m data_prep lm_bff) to prepare data/lm-bff"


@dataclass(frozen=True)
class KShotExample(Example):
    """An LM-BFF example; ``meta['row']`` is its row in the split's file (embeddings are cached per file)."""

    @property
    def n_options(self) -> int:
        return len(LABELS[self.task])


def canonical_task(name: str) -> str:
    for task in LABELS:
        if task.lower().replace("-", "") == str(name).lower().replace("-", ""):
            return task
    raise ConfigError(f"unknown LM-BFF task {name!r}; expected one of {', '.join(LABELS)}")


def split_file(task: str, split: str, seed: int, k: int = 16, root: Path | None = None,
               test_file: str | Path | None = None, variant: str = "k16") -> Path:
    """Where a split's rows live (``test``: ``test_file`` when given)."""
    task, root = canonical_task(task), (root or data_dir()) / "lm-bff"
    if split not in SPLITS:
        raise ConfigError(f"LM-BFF splits are {', '.join(SPLITS)}, not {split!r}")
    if split == "test":
        if test_file:
            return Path(test_file)
        if variant not in VARIANTS:
            raise ConfigError(f"LM-BFF task.variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        return root / task / f"{k}-{seed}" / "test.jsonl" if task == "SST-2" else root / task / TEST_FILES[task, variant]
    return root / task / f"{k}-{seed}" / f"{split}.jsonl"


def spread(n: int, limit: int | None) -> list[int]:
    """``limit`` row indices spread evenly over ``n`` rows (the k-shot files are sorted by label, so
    the first rows would all be one class); all rows when ``limit`` is null or not smaller."""
    if not limit or int(limit) >= n:
        return list(range(n))
    return [i * n // int(limit) for i in range(int(limit))]


def _example(task: str, row: dict[str, Any], split: str, index: int) -> KShotExample:
    label = str(row["label"])
    if label not in LABELS[task]:
        raise ValueError(f"label {row['label']!r} is not one of {LABELS[task]}")
    fields = {name: str(row[name]) for name in FIELDS[task]}
    return KShotExample(task, f"{split}-{index}", fields, LABELS[task].index(label), meta={"row": index})


def load_split(task: str, split: str, seed: int, *, k: int = 16, root: Path | None = None,
               limit: int | None = None, test_file: str | Path | None = None,
               variant: str = "k16") -> list[KShotExample]:
    """Examples of one split of the ``seed`` data split; ``limit`` keeps rows spread over the file."""
    task = canonical_task(task)
    if split != "test" and int(seed) not in SEEDS:
        raise ConfigError(f"LM-BFF data split seed must be one of {SEEDS} (seed= picks the split), got {seed}")
    path = split_file(task, split, int(seed), k, root, test_file, variant)
    if not path.is_file() and split == "test" and task == "SNLI" and not test_file and variant == "k16":
        raise MissingDataError("missing data: LM-BFF's SNLI test set (SNLI 1.0 dev, raw text) is not prepared; "
                               "the local mirror does not have it", file=path,
                               fix=f"with network access run `{SNLI_FETCH}`; offline, task.variant=k16_esnli scores "
                                   "e-SNLI's tokenised copy of SNLI 1.0 test (not LM-BFF's set)")
    if not path.is_file():
        raise DataError(f"LM-BFF {task} {split} (split {k}-{seed}) is not prepared", file=path, fix=PREP_FIX)
    rows = read_jsonl(path, fix=PREP_FIX)
    out = []
    for index in spread(len(rows), limit):
        try:
            out.append(_example(task, rows[index], split, index))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"malformed {task} row ({err})", file=path, line=index + 1, fix=PREP_FIX) from None
    return out


def classifier_pair(example: Example) -> tuple[str, str | None]:
    """Plain inputs for a classifier head (LM-BFF's ``finetune``: sentence, or premise and hypothesis)."""
    f = example.fields
    return (f["sentence"], None) if "sentence" in f else (f["premise"], f["hypothesis"])
