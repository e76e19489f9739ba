"""LAMA T-REx facts and the vocabulary restriction of the LAMA / P-Tuning evaluations.

Variants (AutoPrompt / P-Tuning naming):
- ``lama34k``: test facts of ``original`` (LAMA's T-REx test facts), predictions restricted to the
  34k-vocab list of the model family (21,035 tokens for BERT; the 18,154-token shared list for
  RoBERTa / GPT-2 / ALBERT / T5, as in THUDM/P-tuning).
- ``lama29k``: test facts of ``original_rob``, restricted to the 18,154-token vocabulary shared by
  BERT, RoBERTa and GPT-2 (the same 29,516 facts as ``original`` test filtered by that list).
Train and dev facts (``task.train_facts``): ``original`` (THUDM/P-tuning reads
``fact-retrieval/original`` for every vocabulary, LAMA/cli.py L113) or ``original_rob``
(AutoPrompt's RoBERTa-vocabulary train/dev split); both pass the same vocabulary filter.
A fact is kept only when its object is in the list *and* is one token for the model
(``bench.prompts.verbalizer`` decides the model-specific form: leading space for byte-level BPE,
lower case for ALBERT, ``▁`` for sentencepiece).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import ConfigError, DataError
from bench.io_utils import read_jsonl
from bench.paths import data_dir

VARIANTS = {"lama34k": ("original", "34k"), "lama29k": ("original_rob", "29k")}  # test-fact folder, vocab list
TRAIN_FACTS = ("original", "original_rob")  # task.train_facts: folder of the train and dev facts
PROTOCOLS = ("paper", "reference")  # task.protocol: see docs/lama-protocol.md
TRAINING_SPLITS = ("train", "dev")
PREP_FIX = "run `make data` (python -m data_prep lama) to prepare data/lama"
FACT_FIELDS = ("predicate_id", "sub_label", "obj_label")


@dataclass(frozen=True)
class Fact:
    relation: str
    sub_label: str
    obj_label: str
    uuid: str | None = None
    reconstructed: bool = False


@dataclass
class RelationFacts:
    """The facts of one relation and split, before and after the vocabulary filter."""

    relation: str
    split: str
    facts: list[Fact]
    dropped: list[Fact] = field(default_factory=list)


def lama_root(root: Path | None = None) -> Path:
    path = (root or data_dir()) / "lama"
    if not (path / "relations.jsonl").is_file():
        raise DataError("LAMA data is not prepared", file=path / "relations.jsonl", fix=PREP_FIX)
    return path


def variant_parts(variant: str) -> tuple[str, str]:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown LAMA variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[variant]


def _checked(task_cfg, key: str, default: str, allowed, docs: str) -> str:
    value = task_cfg.get(key) or default
    if value not in allowed:
        raise ConfigError(f"task.{key}={value!r} is not allowed; choose one of {', '.join(allowed)} "
                          f"(conf/task/lama.yaml, conf/task/lama29k.yaml{docs})")
    return str(value)


def train_facts_of(task_cfg) -> str:
    """``task.train_facts``, checked (default ``original``, the reference's folder)."""
    return _checked(task_cfg, "train_facts", "original", TRAIN_FACTS, "")


def protocol_of(task_cfg) -> str:
    """``task.protocol``, checked (default ``paper``)."""
    return _checked(task_cfg, "protocol", "paper", PROTOCOLS, "; docs/lama-protocol.md")


def facts_folder(variant: str, split: str, train_facts: str | None = None) -> str:
    """Folder under data/lama/facts for one split: ``train_facts`` for train/dev, the variant's for test."""
    folder, _ = variant_parts(variant)
    if split in TRAINING_SPLITS and train_facts is not None:
        if train_facts not in TRAIN_FACTS:
            raise ConfigError(f"train_facts={train_facts!r} is not allowed; choose one of {', '.join(TRAIN_FACTS)}")
        return train_facts
    return folder


def relation_ids(root: Path | None = None) -> list[str]:
    """The 41 T-REx relations, in the order of data/lama/relations.jsonl."""
    rows = read_jsonl(lama_root(root) / "relations.jsonl", required=("relation",), fix=PREP_FIX)
    return [row["relation"] for row in rows]


def relation_meta(root: Path | None = None) -> dict[str, dict]:
    rows = read_jsonl(lama_root(root) / "relations.jsonl", required=("relation",), fix=PREP_FIX)
    return {row["relation"]: row for row in rows}


def load_facts(relation: str, split: str, variant: str, root: Path | None = None,
               train_facts: str | None = None) -> list[Fact] | None:
    """Facts of one relation/split, or None when the prepared data has no such file (a known gap).

    ``train_facts`` names the folder of the train and dev facts (None: the variant's folder)."""
    folder = facts_folder(variant, split, train_facts)
    path = lama_root(root) / "facts" / folder / relation / f"{split}.jsonl"
    if not path.is_file():
        return None
    return [
        Fact(
            relation=row["predicate_id"],
            sub_label=row["sub_label"],
            obj_label=row["obj_label"],
            uuid=row.get("uuid"),
            reconstructed=bool(row.get("reconstructed", False)),
        )
        for row in read_jsonl(path, required=FACT_FIELDS, fix=PREP_FIX)
    ]


def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's byte <-> printable-character table, inverted (the alphabet of byte-level BPE tokens)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


_BYTE_DECODER = _byte_level_decoder()


def token_to_word(token: str) -> str:
    """A listed vocabulary entry as a plain word: byte-level BPE entries (``Ġword``, the form the
    RoBERTa / GPT-2 lists of THUDM/P-tuning use) are decoded and their leading space dropped."""
    if not token.startswith("Ġ"):
        return token
    try:
        return bytes(_BYTE_DECODER[ch] for ch in token).decode("utf-8").lstrip(" ")
    except (KeyError, UnicodeDecodeError):
        return token[1:]


def load_vocab(variant: str, key: str, root: Path | None = None) -> list[str]:
    """The LAMA vocabulary list (file order) as plain words, restricting predictions for a model family."""
    _, size = variant_parts(variant)
    path = lama_root(root) / "vocab" / size / f"{key}.txt"
    if not path.is_file():
        raise DataError(f"no {size} vocabulary for key {key!r}", file=path,
                        fix=f"{PREP_FIX}; or set model.lama_vocab_key to one of the files in {path.parent}")
    return [token_to_word(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def filter_facts(
    facts: Iterable[Fact], allowed_objects: set[str], include_reconstructed: bool = True
) -> tuple[list[Fact], list[Fact]]:
    """Split facts into (kept, dropped): kept iff the object is an allowed single-token word."""
    kept: list[Fact] = []
    dropped: list[Fact] = []
    for fact in facts:
        if not include_reconstructed and fact.reconstructed:
            continue
        (kept if fact.obj_label in allowed_objects else dropped).append(fact)
    return kept, dropped


def select_relations(requested: str | Sequence[str], root: Path | None = None) -> list[str]:
    known = relation_ids(root)
    if requested in ("all", None):
        return known
    chosen = [requested] if isinstance(requested, str) else list(requested)
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise ConfigError(f"unknown LAMA relations {unknown}; known: {', '.join(known)}")
    return chosen
