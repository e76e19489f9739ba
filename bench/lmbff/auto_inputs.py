"""The automatic rows read the search stage's result: ``template.auto`` in a preset makes the run take its
data split's search record (``needs.presets``, :mod:`bench.inputs`) and use the candidate of rank
``template.auto.rank`` (0: LM-BFF's ``--template_id 0`` / ``--mapping_id 0`` of the sorted list) in place of
the preset's template (``templates``) or label words (``labels``). The search: :mod:`bench.lmbff.auto_stage`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

from bench.errors import ConfigError


def with_candidate(cfg: Mapping, kind: str, cand: Mapping) -> dict:
    """A copy of the run config whose template (``templates``) or label words (``labels``) are the candidate's."""
    run = copy.deepcopy(dict(cfg))
    template = dict(run["template"])
    if kind == "templates":
        template.update(texts={0: cand["text"]}, rank=0)
    else:
        rank = template.get("rank") or 0
        template.update(texts={0: (template.get("texts") or {}).get(rank, (template.get("texts") or {}).get(str(rank)))},
                        rank=0, verbalizer=dict(cand["label_words"]))
    template["verbalizers"] = {}
    run["template"] = template
    return run


def apply_auto(cfg: dict) -> tuple[dict, dict | None]:
    """For a run with ``template.auto``: its split's search record's candidate of rank ``auto.rank`` in place
    of the template or label words; (config, what was taken) or (config, None) without ``template.auto``."""
    auto = (cfg.get("template") or {}).get("auto")
    if not auto:
        return cfg, None
    from bench.inputs import load_inputs

    refs = cfg.get("inputs") or []
    if not refs:
        raise ConfigError(f"template.auto reads the search stage's record, but this run has no inputs: the preset "
                          f"needs `needs.presets: [<its search preset>]` (template {cfg['template'].get('name')!r})")
    records = [(ref, r) for ref, r in zip(refs, load_inputs(refs, Path(cfg["paths"]["results_dir"])), strict=True)
               if int(r["config"]["seed"]) == int(cfg["seed"])]  # a study passes every split's search as input
    if len(records) != 1:
        raise ConfigError(f"expected one search record of split {cfg['seed']} among the inputs, found {len(records)}")
    ref, record = records[0]
    found = record["extra"]["auto_search"]
    rank = int(auto.get("rank", 0))
    if rank < len(found["ranked"]):
        cand = found["ranked"][rank]
        taken = {"kind": found["kind"], "rank": rank, "candidate": cand, "search_record": ref["path"]}
        return with_candidate(cfg, found["kind"], cand), taken
    if auto.get("on_empty") == "manual" and found["settings"].get("plumbing_only"):
        return cfg, {"kind": found["kind"], "rank": rank, "candidate": None, "search_record": ref["path"],
                     "fallback": "the manual prompt: the search (random-weight plumbing model) found no usable "
                                 f"candidate of rank {rank}"}
    raise ConfigError(f"the search record of split {cfg['seed']} has {len(found['ranked'])} usable candidates, "
                      f"none of rank {rank} ({len(found['unusable'])} unusable: see its extra.auto_search.unusable)")
