"""LAMA knowledge probing: T-REx facts (LAMA-34k/29k splits), vocabularies, prompt sets, Google-RE, evidences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_prep.common import Family, Outputs, Report, Sources, Upstream, run_step
from data_prep.lama import extras, facts

VERSION = "1"
PTUNING = ("programmer-ming/P-turning-main", "530cd15f500711d01ea71698c3dd47b0301beacd")
OPTIPROMPT = ("princeton-nlp/OptiPrompt", "9450bc96f28ac3df01337c79be079a2ac3defb5c")

UPSTREAMS = [
    Upstream("lama/", *PTUNING, "data/LAMA/"),  # relations.jsonl, {29k,34k}-vocab.json
    Upstream("lama/fact-retrieval/", *PTUNING, "data/LAMA/fact-retrieval/", modified=True,
             note="mirror copy has the 'evidences' field removed from every row; other fields unchanged"),
    Upstream("lama/reconstructed/", None,
             note="rebuilt test sets for 13 relations (mLAMA facts + AutoPrompt/ParaRel labels); see mirror PROVENANCE"),
    Upstream("lama/evidences/", None,
             note="evidence sentences extracted from the P-turning-main fact files (same commit) before stripping"),
    Upstream("lama/common_vocabs/", *OPTIPROMPT, "common_vocabs/"),
    Upstream("lama/prompts/optiprompt_relation_metainfo/", *OPTIPROMPT, "relation_metainfo/"),
    Upstream("lama/prompts/autoprompt/", "ucinlp/autoprompt", "d637675999adf057a581c3d1084d64f3a247fda5", "prompts/"),
    Upstream("lama/prompts/lpaqa/", "jzbjyb/LPAQA", "3204221b47e66caa9bc3aebbcc4b2c2600dbaa1b", "prompt/"),
    Upstream("lama/pararel/pattern_data/", "yanaiela/pararel", "cb5554678457beb5ac163d888f1ce8cf174b3f0b",
             "data/pattern_data/"),
    Upstream("lama/Google_RE/", "norakassner/BERT-kNN", "f9c832b3a9851ce4e0b19592e0092df90e5a3fee", "data/Google_RE/"),
]


def build(src: Sources, outs: Outputs, rep: Report) -> list[dict[str, Any]]:
    rels = facts.relations(src, outs, rep)
    vocab29 = facts.vocab(src, outs, rep)
    gaps = facts.facts(src, outs, rep, rels, vocab29)
    gaps += extras.prompts(src, outs, rep, rels)
    extras.google_re(src, outs, rep)
    extras.evidences(src, outs, rep)
    return gaps


FAMILY = Family("lama", VERSION, "lama", UPSTREAMS, Path(__file__).with_name("SHA256SUMS"), build)


def prepare(mirror: Path | None = None, out: Path | None = None, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Build data/lama/ (see README.md); return counts. kwargs: download, quiet, write_sums."""
    return run_step(FAMILY, mirror, out, force, **kwargs)
