"""LM-BFF 16-shot splits (SST-2, SNLI; seeds 13/21/42/87/100) and a separately named e-SNLI test variant.

LM-BFF's SNLI test set is SNLI 1.0 *dev* in raw text (GLUE's ``SNLI/dev.tsv``, 9,842 pairs;
``tools/generate_k_shot_data.py`` writes the original dev set as ``test.tsv``). The mirror lacks it:
``python -m data_prep lm_bff --full --download`` fetches it (``data_prep/lm_bff/snli_test.py``) into
``SNLI/test.jsonl``; without it SNLI test cells read "missing data". The mirror's e-SNLI copy of
SNLI 1.0 *test* (tokenised) is written as ``SNLI/test_esnli.jsonl`` for the ``k16_esnli`` variant only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from data_prep.common import Family, Outputs, Report, Sources, Upstream, run_step, want

VERSION = "2"  # 2: e-SNLI test -> SNLI/test_esnli.jsonl; SNLI/test.jsonl is LM-BFF's (snli_test.py)
SEEDS = (13, 21, 42, 87, 100)
K = 16
SST2_LABELS = ("0", "1")
NLI_LABELS = ("entailment", "neutral", "contradiction")
EXPECTED = {"SST-2": {"train": 32, "dev": 32, "test": 872}, "SNLI": {"train": 48, "dev": 48}, "SNLI test (e-SNLI)": 9_824}

UPSTREAMS = [
    Upstream("lm-bff/k-shot/", "ZhengxiangShi/PowerfulPromptFT", "b4ecdea060847115e9909b442ab4eb15bcb2a2c4",
             "data/k-shot/", note="same splits as princeton-nlp/LM-BFF data/k-shot (K=16)"),
    Upstream("lm-bff/snli_test_esnli/", "OanaMariaCamburu/e-SNLI", "7b585a3f077fdea899780eb0473940522ae44a2e",
             "dataset/eSNLI/", note="tokenized SNLI 1.0 test sentences (see README caveat)"),
]


def _lines(path: Path) -> list[str]:
    """Lines without their line ends (\\n or \\r\\n); a final newline does not make an empty line."""
    want(path.is_file(), "file not found", path, None, "file")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _tsv(src: Sources, rel: str, task: str) -> list[dict[str, Any]]:
    path = src.path(rel)
    lines = _lines(path)
    want(bool(lines), "empty file (no header)", path, 1, "header")
    header = lines[0].split("\t")
    rows = []
    if task == "SST-2":
        want(header == ["sentence", "label"], f"expected header sentence<TAB>label, got {lines[0]!r}", path, 1, "header")
        for number, line in enumerate(lines[1:], start=2):
            cols = line.split("\t")
            want(len(cols) == 2, f"expected 2 tab-separated columns, got {len(cols)}", path, number, "sentence")
            want(cols[1] in SST2_LABELS, f"expected 0 or 1, got {cols[1]!r}", path, number, "label")
            rows.append({"sentence": cols[0], "label": int(cols[1])})
        return rows
    want(header[:3] == ["index", "captionID", "pairID"] and header[7:9] == ["sentence1", "sentence2"],
         f"expected the GLUE SNLI header, got {lines[0][:60]!r}...", path, 1, "header")
    for number, line in enumerate(lines[1:], start=2):
        cols = line.split("\t")
        want(len(cols) >= 11, f"expected at least 11 tab-separated columns, got {len(cols)}", path, number, "sentence2")
        # LM-BFF reads sentence1/sentence2 from columns 7/8 and the gold label from the last column.
        want(cols[-1] in NLI_LABELS, f"expected one of {NLI_LABELS}, got {cols[-1]!r}", path, number, "gold_label")
        rows.append({"premise": cols[7], "hypothesis": cols[8], "label": cols[-1]})
    return rows


def _snli_test(src: Sources) -> list[dict[str, Any]]:
    names = ("s1", "s2", "labels")
    paths = [src.path(f"lm-bff/snli_test_esnli/{n}.test") for n in names]
    cols = [_lines(p) for p in paths]
    for path, col in zip(paths[1:], cols[1:], strict=True):
        want(len(col) == len(cols[0]), f"{len(col)} lines but {paths[0].name} has {len(cols[0])}; files must align",
             path, None, "line count")
    rows = []
    for number, (s1, s2, label) in enumerate(zip(*cols, strict=True), start=1):
        want(label.strip() in NLI_LABELS, f"expected one of {NLI_LABELS}, got {label!r}", paths[2], number, "label")
        # e-SNLI lines end with a space after the tokenized final punctuation: drop trailing whitespace only.
        rows.append({"premise": s1.rstrip(), "hypothesis": s2.rstrip(), "label": label.strip()})
    return rows


def build(src: Sources, outs: Outputs, rep: Report) -> list[dict[str, Any]]:
    balanced, files, tests = 0, 0, set()
    for task, splits in (("SST-2", ("train", "dev", "test")), ("SNLI", ("train", "dev"))):
        for split in splits:
            total = 0
            for seed in SEEDS:
                rows = _tsv(src, f"lm-bff/k-shot/{task}/{K}-{seed}/{split}.tsv", task)
                total += outs.jsonl(f"lm-bff/{task}/{K}-{seed}/{split}.jsonl", rows)
                rep.check(f"{task}/{K}-{seed}/{split}", EXPECTED[task][split], len(rows))
                if split == "test":
                    tests.add(outs.files[f"lm-bff/{task}/{K}-{seed}/{split}.jsonl"]["sha256"])
                else:
                    files += 1
                    balanced += set(Counter(r["label"] for r in rows).values()) == {K}
    rep.check(f"k-shot train/dev files with exactly {K} per class", files, balanced)
    rep.check("distinct SST-2 test files across seeds", 1, len(tests))
    rows = _snli_test(src)
    rep.check("SNLI/test_esnli", EXPECTED["SNLI test (e-SNLI)"], outs.jsonl("lm-bff/SNLI/test_esnli.jsonl", rows))
    from data_prep.lm_bff.snli_test import FETCH, SIDECAR, TEST

    stale = outs.out / "lm-bff" / TEST
    if stale.is_file() and not stale.with_name(SIDECAR).is_file():
        stale.unlink()  # version 1 wrote the e-SNLI copy there: never score it as LM-BFF's test set
    if stale.is_file():
        return []
    return [{"kind": "missing", "output": f"lm-bff/{TEST}",
             "reason": f"LM-BFF's SNLI test set (SNLI 1.0 dev, raw text, 9,842 pairs) is not in the mirror: `{FETCH}`"}]


FAMILY = Family("lm_bff", VERSION, "lm-bff", UPSTREAMS, Path(__file__).with_name("SHA256SUMS"), build)


def prepare(mirror: Path | None = None, out: Path | None = None, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Build data/lm-bff/ (see README.md); return counts. kwargs: download, quiet, write_sums."""
    return run_step(FAMILY, mirror, out, force, **kwargs)
