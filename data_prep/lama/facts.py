"""LAMA relations, vocabularies and T-REx fact splits (original = LAMA-34k, original_rob = LAMA-29k)."""

from __future__ import annotations

import json
from typing import Any

from bench.errors import DataError
from data_prep.common import MIRROR_FIX, Outputs, Report, Sources, numbered_jsonl, want, want_str
from data_prep.lama import expected as E

FACT_FIELDS = ("sub_uri", "sub_label", "obj_uri", "obj_label", "predicate_id")
LPAQA_TRAIN_NOTE = "lama/lpaqa_trex_train/{rel}.jsonl (LPAQA T-REx train) could substitute; NOT substituted"


def relations(src: Sources, outs: Outputs, rep: Report) -> list[str]:
    """Write the 41 T-REx rows of LAMA's relations.jsonl; return their ids in file order."""
    path = src.path("lama/relations.jsonl")
    keep: list[dict[str, Any]] = []
    for line, row in numbered_jsonl(path, required=("relation", "template", "label")):
        want_str(row, ("relation", "template", "label"), path, line)
        if row["relation"] in E.TREX_RELATIONS:
            keep.append({k: row.get(k) for k in ("relation", "label", "template", "type", "description")})
    found = [r["relation"] for r in keep]
    absent = sorted(set(E.TREX_RELATIONS) - set(found))
    want(not absent, f"T-REx relations missing from the file: {absent}", path, None, "relation")
    rep.check("relations.jsonl (T-REx)", len(E.TREX_RELATIONS), outs.jsonl("lama/relations.jsonl", keep))
    return found


def vocab(src: Sources, outs: Outputs, rep: Report) -> set[str]:
    """Write per-model vocab lists and the common vocabs; return the LAMA-29k token set."""
    vocab29: set[str] = set()
    for size, keys in E.VOCAB.items():
        path = src.path(f"lama/{size}-vocab.json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg})", file=path, line=err.lineno, fix=MIRROR_FIX) from None
        for key, count in keys.items():
            tokens = data.get(key) if isinstance(data, dict) else None
            want(isinstance(tokens, list) and all(isinstance(t, str) for t in tokens),
                 "expected a list of token strings", path, None, key)
            rep.check(f"vocab/{size}/{key}.txt", count, outs.lines(f"lama/vocab/{size}/{key}.txt", tokens))
            if size == "29k" and key == "bert-base-cased":
                vocab29 = set(tokens)
    for name, count in E.COMMON_VOCAB.items():
        path = src.path(f"lama/common_vocabs/{name}.txt")
        tokens = [t.strip() for t in path.read_text(encoding="utf-8").splitlines()]
        rep.check(f"vocab/{name}.txt", count, outs.lines(f"lama/vocab/{name}.txt", [t for t in tokens if t]))
    return vocab29


def _read_facts(src: Sources, rel_path: str, rel: str, reconstructed: bool) -> list[dict[str, Any]]:
    path = src.path(rel_path)
    rows = []
    for line, row in numbered_jsonl(path, required=FACT_FIELDS):
        want_str(row, FACT_FIELDS, path, line)
        want(row["predicate_id"] == rel, f"expected {rel!r}, got {row['predicate_id']!r}", path, line, "predicate_id")
        uuid = row.get("uuid")
        want(uuid is None or isinstance(uuid, str), f"expected a string or null, got {uuid!r}", path, line, "uuid")
        rows.append({
            "uuid": uuid, "predicate_id": rel,
            "sub_uri": row["sub_uri"], "sub_label": row["sub_label"],
            "obj_uri": row["obj_uri"], "obj_label": row["obj_label"],
            "reconstructed": reconstructed,
        })
    return rows


def facts(src: Sources, outs: Outputs, rep: Report, rels: list[str], vocab29: set[str]) -> list[dict[str, Any]]:
    """Write facts/<variant>/<REL>/<split>.jsonl; check totals, per-relation counts and the 29k filter."""
    gaps: list[dict[str, Any]] = []
    got: dict[str, dict[str, tuple[int | None, ...]]] = {}
    totals = {v: dict.fromkeys(E.TOTALS[v], 0) for v in E.VARIANTS}
    test_keys: dict[str, dict[str, list[tuple[str, str, str]]]] = {v: {} for v in E.VARIANTS}
    for variant in E.VARIANTS:
        for rel in rels:
            counts: list[int | None] = []
            for split in E.SPLITS:
                missing = rel in {"train": E.MISSING_TRAIN, "dev": E.MISSING_DEV, "test": E.MISSING_TEST}[split]
                out_rel = f"lama/facts/{variant}/{rel}/{split}.jsonl"
                if missing and split != "test":
                    counts.append(None)
                    note = "file absent from every reachable snapshot; not invented"
                    if split == "train":
                        note += "; " + LPAQA_TRAIN_NOTE.format(rel=rel)
                    gaps.append({"kind": "missing", "output": out_rel, "reason": note})
                    rep.check(f"facts/{variant}/{rel}/{split}", None, None, gap="missing upstream, no file written")
                    continue
                if missing:
                    source = f"lama/reconstructed/fact-retrieval/{variant}/{rel}/test.jsonl"
                    gaps.append({"kind": "reconstructed", "output": out_rel, "source": source,
                                 "reason": "upstream test file unavailable; rebuilt from mLAMA/ParaRel (rows carry reconstructed: true)"})
                else:
                    source = f"lama/fact-retrieval/{variant}/{rel}/{split}.jsonl"
                rows = _read_facts(src, source, rel, reconstructed=missing)
                counts.append(outs.jsonl(out_rel, rows))
                if split == "test":
                    totals[variant]["test_reconstructed" if missing else "test_real"] += len(rows)
                    test_keys[variant][rel] = sorted((r["sub_uri"], r["obj_uri"], r["obj_label"]) for r in rows)
                totals[variant][split] += len(rows)
            got.setdefault(rel, {})[variant] = tuple(counts)
    for variant in E.VARIANTS:
        for key, value in E.TOTALS[variant].items():
            rep.check(f"facts/{variant} {key}", value, totals[variant][key])
    _per_relation(rep, rels, got)
    holds = [r for r in rels if test_keys["original_rob"][r] == [k for k in test_keys["original"][r] if k[2] in vocab29]]
    rep.check("relations: original_rob test == original test ∩ 29k", len(rels), len(holds))
    return gaps


def _per_relation(rep: Report, rels: list[str], got: dict[str, dict[str, tuple[int | None, ...]]]) -> None:
    """Compare each relation's (train, dev, test) with the pinned table; print one line per relation."""
    rep.note("per relation (train/dev/test), expected = got unless marked:")
    bad = 0
    for rel in rels:
        parts = []
        for variant in E.VARIANTS:
            exp, have = E.PER_RELATION.get(rel, {}).get(variant), got[rel][variant]
            text = "/".join("-" if n is None else str(n) for n in have)
            if exp != have:
                bad += 1
                text += f" MISMATCH (expected {'/'.join('-' if n is None else str(n) for n in exp or ())})"
            parts.append(f"{variant} {text}")
        rep.note(f"  {rel:<6} " + "   ".join(parts))
    rep.check("relations x variants with pinned per-relation counts", 2 * len(rels), 2 * len(rels) - bad)
