"""transformers 3.0.2's slow ``BertTokenizer`` (PET's and PT-Fewshot's) beside the suite's ``pet_slow`` on WordPiece.

``python -m bench.parity fewglue --ref /path/to/pet --parts slow_bert`` collects every distinct string of the
prepared FewGLUE and SuperGLUE files, has 3.0.2's tokenizer encode them in PET's environment (the tiny BERT's
vocabulary, cased and uncased) and keeps, with their ids, the texts on which the suite's fast tokenizer differs,
plus a few hand-made strings (golden ``slow_bert_tiny-bert``). CI (``tests/parity/test_fewglue_slow_bert.py``):
:func:`bench.prompts.slow_tokenizers.slow_wordpiece_ids` must give 3.0.2's ids on every one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.parity.fewglue_tokenizers import _snapshot, export_tokenizer
from bench.parity.golden import write_golden
from bench.parity.refenv import run_ref_script
from bench.paths import data_dir

MODEL = "tiny-bert"
GOLDEN = f"slow_bert_{MODEL}"
VARIANTS = ("cased", "uncased")  # 3.0.2's do_lower_case False / True on the same vocabulary
# hand-made: format/control characters inside and between words, accents, CJK, specials as text, punctuation
EXTRA = ("end\u202c here", "soft\u00adhyphen", "zero\u200bwidth", "\ufeffbom", "a\x00b", "x\ufffdy", "Café Ünïcode",
         "中文 text", "a [SEP] b [MASK]", "tab\there\nnew\u2028line", "rock'n'roll, (yes)!", "\u0085next")


def all_texts(root: Path | None = None) -> list[str]:
    """Every distinct non-blank string (any field, nested) of ``fewglue/*/*.jsonl`` and ``superglue/*/*.jsonl``."""
    root = root or data_dir()
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value.strip():
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path in sorted([*root.glob("fewglue/*/*.jsonl"), *root.glob("superglue/*/*.jsonl")]):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                walk(json.loads(line))
    return sorted(found)


def tokenizer(lowercase: bool):
    """The tiny BERT's fast tokenizer, or the same vocabulary with an uncased normalizer (as 3.0.2's
    ``do_lower_case=True`` reads it)."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cased = AutoTokenizer.from_pretrained(_snapshot(MODEL))
    if not lowercase:
        return cased
    spec = json.loads(cased.backend_tokenizer.to_str())
    spec["normalizer"]["lowercase"] = True
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), unk_token="[UNK]",
                                   sep_token="[SEP]", cls_token="[CLS]", pad_token="[PAD]", mask_token="[MASK]")


def regenerate(python: Path, ref: Path, head: str, work: Path) -> Path:
    """Run 3.0.2's ``BertTokenizer`` on every text; keep the texts the fast tokenizer gets wrong (and ``EXTRA``)."""
    texts = all_texts()
    files = export_tokenizer(MODEL, work / "slow-bert")
    job = work / "slow-bert-job.json"
    job.write_text(json.dumps({"slow_bert": {"texts": [*texts, *EXTRA], "folder": files["folder"]},
                               "out": str(work / "slow-bert.json")}))
    print(f"[fewglue] slow BERT: {len(texts)} texts through transformers 3.0.2 (a few minutes)", flush=True)
    run_ref_script(python, Path(__file__).with_name("fewglue_ref.py"), [str(job)], ref)
    theirs = json.loads((work / "slow-bert.json").read_text())
    keep, fast_differs = set(range(len(texts), len(texts) + len(EXTRA))), {}
    for variant in VARIANTS:
        fast = tokenizer(variant == "uncased")
        wrong = {i for i, text in enumerate(texts) if list(fast.encode(text, add_special_tokens=False)) != theirs[variant][i]}
        fast_differs[variant] = len(wrong)
        keep |= wrong
    everything = [*texts, *EXTRA]
    payload = {"reference": f"transformers 3.0.2 BertTokenizer (timoschick/pet@{head}'s environment)",
               "model": MODEL, "n_texts": len(texts), "fast_differs": fast_differs,
               "texts": [{"text": everything[i], **{v: theirs[v][i] for v in VARIANTS}} for i in sorted(keep)]}
    return write_golden("fewglue", GOLDEN, payload)
