"""Records -> tidy pandas frames; nothing downstream of a record reads anything else.

- ``records``: one row per (record, split): spec fields (schema 2), derived labels and every
  metric of the split as ``overall.<key>`` and ``<subset>.<key>`` (generic, not LAMA-only).
- ``groups``: one row per (record, split, group) with the group's metrics under their own keys
  (LAMA: ``p_at_1``, ``n``, ``hits``, ``n_reconstructed``) and the prompt text used for the group.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.identity import config_hash, identity_config
from bench.tables.load import Problem, load_records

SPEC_FIELDS = ["task", "variant", "model", "method", "template", "rank", "seed", "tag", "preset", "config_hash"]
PAPER_SETTING = {"protocol": "paper", "train_facts": "original"}  # a missing key means the paper's value
# the setting a task's reproduction presets run (LAMA: the released code's protocol, which produced the published
# numbers; docs/lama-protocol.md); a row that departs from it says so in its label ("setting")
REPRODUCTION_SETTING = {"lama": {"protocol": "reference", "train_facts": "original"}}
BASE_COLUMNS = ["name", "path", "schema_version", *SPEC_FIELDS, "grid_hash", "template_rank", "set", "row", "protocol",
                "train_facts", "setting", "selection_split", "report_split", "tie_order"]


def norm_prompt(text: Any) -> str | None:
    """Whitespace-insensitive prompt text: single spaces, no space before final punctuation."""
    if not isinstance(text, str):
        return None
    return re.sub(r"\s+([.?!,;:])", r"\1", " ".join(text.split()))


def setting_of(record: dict) -> dict[str, str]:
    """The record's protocol and training facts (``task.protocol``, ``task.train_facts``)."""
    task = (record.get("config") or {}).get("task") or {}
    return {key: str(task.get(key) or default) for key, default in PAPER_SETTING.items()}


def grid_hash(record: dict) -> str | None:
    """The record's configuration apart from seed and prompt rank, which tables reduce over (mean, std,
    n): records that differ only there are one configuration, not a grid (``‡``)."""
    config, own = record.get("config"), record["spec"].get("config_hash")
    if not own or not isinstance(config, dict) or config_hash(config) != own:
        return own  # no config, or not the one hashed (hand-made records): the record's own hash
    tree = identity_config(config)
    tree.pop("seed", None)
    if isinstance(tree.get("template"), dict):
        tree["template"].pop("rank", None)
    body = json.dumps(tree, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:8]


def base_row(path: Path, record: dict) -> dict[str, Any]:
    spec = record["spec"]
    row: dict[str, Any] = {"name": record["name"], "path": str(path), "schema_version": record["schema_version"],
                           **{key: spec.get(key) for key in SPEC_FIELDS}}
    row["grid_hash"] = grid_hash(record)
    row["tie_order"] = (record.get("extra") or {}).get("tie_order")  # a runner's own tie order (grid.tie: record)
    rank = int(spec.get("rank") or 0)
    row["rank"] = rank
    row["template_rank"] = f"{spec['template']}-r{rank}" if rank else spec["template"]
    row["set"] = spec["template"]
    row["row"] = spec["model"] if not isinstance(spec.get("tag"), str) else f"{spec['model']} [{spec['tag']}]"
    setting = setting_of(record)
    row.update(setting)
    default = REPRODUCTION_SETTING.get(spec.get("task"), PAPER_SETTING)
    departures = [f"{key.replace('_', ' ')} {value}" for key, value in setting.items() if value != default[key]]
    row["setting"] = f" ({', '.join(departures)})" if departures else ""
    row["selection_split"] = record["protocol"].get("selection_split")
    row["report_split"] = record["protocol"].get("report_split")
    return row


def _flat(prefix: str, values: dict) -> dict[str, Any]:
    return {f"{prefix}.{key}": value for key, value in (values or {}).items()
            if not isinstance(value, dict | list)}


@dataclass
class Frames:
    """The two frames plus the records they came from (for protocol notes) and skipped files."""

    records: pd.DataFrame
    groups: pd.DataFrame
    by_name: dict[str, dict] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def build_frames(records: list[tuple[Path, dict]], problems: list[Problem] | None = None) -> Frames:
    rows, group_rows, by_name = [], [], {}
    for path, record in records:
        base = base_row(path, record)
        by_name[record["name"]] = record
        texts = (record.get("extra") or {}).get("templates") or {}
        for split, metrics in record["metrics"].items():
            flags = {"split": split, "is_report": split == base["report_split"],
                     "is_selection": split == base["selection_split"]}
            row = {**base, **flags, **_flat("overall", metrics.get("overall"))}
            for subset, values in (metrics.get("subsets") or {}).items():
                row.update(_flat(subset, values))
            row["params.trainable"] = (record.get("params") or {}).get("trainable")
            row["wall_time_s"] = (record.get("provenance") or {}).get("wall_time_s")
            rows.append(row)
            for group, values in (metrics.get("groups") or {}).items():
                prompt = texts.get(group) if isinstance(texts, dict) else None
                group_rows.append({**base, **flags, "group": group, "prompt": prompt,
                                   "prompt_norm": norm_prompt(prompt),
                                   **{k: v for k, v in (values or {}).items() if not isinstance(v, dict | list)}})
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=[*BASE_COLUMNS, "split", "is_report", "is_selection"])
    groups = pd.DataFrame(group_rows)
    if groups.empty:
        groups = pd.DataFrame(columns=[*BASE_COLUMNS, "split", "is_report", "is_selection", "group", "prompt",
                                       "prompt_norm"])
    return Frames(frame, groups, by_name, list(problems or []))


def read_frames(runs_dir: Path, models=None, tags=None) -> Frames:
    """Load every finished record under runs_dir (bad ones reported in ``problems``) into frames."""
    records, problems = load_records(runs_dir, models, tags)
    return build_frames(records, problems)
