"""LAMA prompt sets, Google-RE and the T-REx evidence sentences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_prep.common import Outputs, Report, Sources, numbered_jsonl, want, want_str
from data_prep.lama import expected as E

OPTI = "lama/prompts/optiprompt_relation_metainfo"


def _template(value: Any, path: Path, line: int | None, name: str = "template") -> str:
    want(isinstance(value, str) and "[X]" in value and "[Y]" in value,
         f"expected a template string with [X] and [Y], got {value!r}", path, line, name)
    return value


def _per_relation_file(src: Sources, rel_path: str) -> dict[str, dict[str, Any]]:
    """Rows of a one-row-per-relation file, keyed by relation."""
    path = src.path(rel_path)
    found: dict[str, dict[str, Any]] = {}
    for line, row in numbered_jsonl(path, required=("relation", "template")):
        _template(row["template"], path, line)
        found.setdefault(row["relation"], {**row, "_line": line})
    return found


def prompts(src: Sources, outs: Outputs, rep: Report, rels: list[str]) -> list[dict[str, Any]]:
    """Write prompts/<set>.jsonl rows {relation, template, rank, source, weight} (+ ParaRel extras)."""
    sets: dict[str, list[dict[str, Any]]] = {}
    single = {
        "lama": "lama/relations.jsonl",
        "lpaqa": f"{OPTI}/LPAQA_relations.jsonl",
        "autoprompt_bert": "lama/prompts/autoprompt/fact_retrieval_bert_prompts.jsonl",
        "autoprompt_roberta": "lama/prompts/autoprompt/fact_retrieval_roberta_prompts.jsonl",
    }
    for name, rel_path in single.items():
        found = _per_relation_file(src, rel_path)
        absent = [r for r in rels if r not in found]
        want(not absent, f"relations without a prompt: {absent}", src.path(rel_path), None, "relation")
        sets[name] = [{"relation": r, "template": found[r]["template"], "rank": 0, "source": rel_path, "weight": None}
                      for r in rels]
    for kind in ("mine", "paraphrase"):
        rows = []
        for rel in rels:
            rel_path = f"lama/prompts/lpaqa/{kind}/{rel}.jsonl"
            path = src.path(rel_path)
            items = []
            for line, row in numbered_jsonl(path, required=("template", "weight")):
                _template(row["template"], path, line)
                want(isinstance(row["weight"], int | float), f"expected a number, got {row['weight']!r}", path, line, "weight")
                items.append(row)
            items.sort(key=lambda r: -float(r["weight"]))  # stable: ties keep file order
            rows += [{"relation": rel, "template": r["template"], "rank": i, "source": rel_path, "weight": float(r["weight"])}
                     for i, r in enumerate(items)]
        sets[f"lpaqa_{kind}"] = rows
    rows = []
    for rel in rels:
        rel_path = f"lama/prompts/lpaqa/manual_paraphrase/{rel}.txt"
        path = src.path(rel_path)
        lines = [t.rstrip("\r\n") for t in path.read_text(encoding="utf-8").split("\n")]
        kept = [(i, t) for i, t in enumerate(lines, start=1) if t.strip()]
        rows += [{"relation": rel, "template": _template(t, path, i, "line"), "rank": r, "source": rel_path, "weight": None}
                 for r, (i, t) in enumerate(kept)]
    sets["lpaqa_manual_paraphrase"] = rows
    rows = []
    for rel in rels:
        if rel in E.PARAREL_MISSING:
            continue
        rel_path = f"lama/pararel/pattern_data/graphs_json/{rel}.jsonl"
        path = src.path(rel_path)
        for rank, (line, row) in enumerate(numbered_jsonl(path, required=("pattern",))):
            rows.append({"relation": rel, "template": _template(row["pattern"], path, line, "pattern"), "rank": rank,
                         "source": rel_path, "weight": None, "lemma": row.get("lemma"),
                         "extended_lemma": row.get("extended_lemma"), "tense": row.get("tense")})
    sets["pararel"] = rows
    for name, count in E.PROMPTS.items():
        rep.check(f"prompts/{name}.jsonl", count, outs.jsonl(f"lama/prompts/{name}.jsonl", sets[name]))
    missing = ", ".join(E.PARAREL_MISSING)
    rep.check("prompts/pararel relations", len(rels) - len(E.PARAREL_MISSING), len({r["relation"] for r in sets["pararel"]}))
    rep.note(f"prompts/pararel: no ParaRel patterns for {missing} (upstream has none); known gap")
    return [{"kind": "missing", "output": f"lama/prompts/pararel.jsonl ({r})",
             "reason": "ParaRel has no patterns for this relation"} for r in E.PARAREL_MISSING]


def google_re(src: Sources, outs: Outputs, rep: Report) -> None:
    """Write google_re/<relation>.jsonl rows {uuid, sub_label, obj_label, template, relation}."""
    for name, count in E.GOOGLE_RE.items():
        path = src.path(f"lama/Google_RE/{name}_test.jsonl")
        rows = []
        for line, row in numbered_jsonl(path, required=("uuid", "sub_label", "obj_label")):
            want_str(row, ("uuid", "sub_label", "obj_label"), path, line)
            rows.append({"uuid": row["uuid"], "sub_label": row["sub_label"], "obj_label": row["obj_label"],
                         "template": E.GOOGLE_RE_TEMPLATES[name], "relation": name})
        rep.check(f"google_re/{name}.jsonl", count, outs.jsonl(f"lama/google_re/{name}.jsonl", rows))


EVIDENCE_FIELDS = ("predicate_id", "split", "sub_uri", "sub_label", "obj_uri", "obj_label", "obj_surface", "masked_sentence")


def evidences(src: Sources, outs: Outputs, rep: Report) -> None:
    """Write evidences.jsonl.gz: the masked sentence and the sentence with its first [MASK] filled."""
    path = src.path("lama/evidences/trex_evidences.jsonl.gz")
    rows = []
    per_split = dict.fromkeys(("train", "dev", "test"), 0)
    for line, row in numbered_jsonl(path, required=EVIDENCE_FIELDS):
        want_str(row, EVIDENCE_FIELDS, path, line)
        masked = row["masked_sentence"]
        want("[MASK]" in masked, "masked_sentence has no [MASK]", path, line, "masked_sentence")
        want(row["split"] in per_split, f"unknown split {row['split']!r}", path, line, "split")
        per_split[row["split"]] += 1
        rows.append({
            "predicate_id": row["predicate_id"], "split": row["split"],
            "sub_uri": row["sub_uri"], "sub_label": row["sub_label"],
            "obj_uri": row["obj_uri"], "obj_label": row["obj_label"], "obj_surface": row["obj_surface"],
            "sentence": masked.replace("[MASK]", row["obj_surface"], 1), "masked_sentence": masked,
        })
    for split, n in per_split.items():
        rep.check(f"evidences {split}", E.EVIDENCES[split], n)
    rep.check("evidences.jsonl.gz", E.EVIDENCES["total"], outs.jsonl("lama/evidences.jsonl.gz", rows))
