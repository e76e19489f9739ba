"""Protocol notes: where a record's config differs from the paper's recipe, a mark and a note.

Rules are data (``conf/tables/rules/<name>.yaml``, a list). Each rule reads ``field`` (or several
``fields``), a dotted path into the record, whose roots are ``config``, ``extra``, ``spec``,
``params``, ``protocol`` and ``report`` (the metrics of the record's report split), and notes when:

- ``paper: v``: the value differs from the paper's ``v``; ``paper_by: {field, values}`` takes ``v``
  from a map (a missing value never fires: a config key that is absent means the paper's value);
- ``equals: v``: the value is ``v``; ``truthy: true``: the value is set; ``below: n``: it is < n;
  ``missing: v`` reads an absent key as ``v``.

``if: {path: value}`` restricts a rule; ``note`` is a ``str.format`` text with ``value``, ``paper``,
the ``vars`` (name -> path) and ``details`` (items of ``details`` entries, "; "-joined in brackets).
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


def lookup(record: dict, path: str) -> Any:
    """Dotted path into a record; ``report.`` reads metrics[report_split]. Missing -> _MISSING."""
    head, _, rest = path.partition(".")
    if head == "report":
        split = (record.get("protocol") or {}).get("report_split") or record.get("report_split")
        node: Any = (record.get("metrics") or {}).get(split, {})
    else:
        node = record.get(head, _MISSING)
    for part in rest.split(".") if rest else []:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return _MISSING if node is None else node


def _details(record: dict, entries: list[dict]) -> str:
    items = []
    for entry in entries or []:
        found = lookup(record, entry["field"])
        if isinstance(found, dict):
            items += [entry["item"].format(key=k, value=v) for k, v in found.items()]
        elif isinstance(found, list):
            items += [entry["item"].format(value=v) for v in found]
    return f" ({'; '.join(items)})" if items else ""


def _applies(rule: dict, record: dict) -> tuple[bool, Any, Any]:
    for path, wanted in (rule.get("if") or {}).items():
        if lookup(record, path) != wanted:
            return False, None, None
    if "fields" in rule:
        values = [lookup(record, f) for f in rule["fields"]]
        if all(v is _MISSING for v in values):
            return False, None, None
        value: Any = [None if v is _MISSING else v for v in values]
    else:
        value = lookup(record, rule["field"])
        if value is _MISSING and "missing" in rule:  # ``missing: v``: what an absent key meant (older records)
            value = rule["missing"]
    paper = rule.get("paper", _MISSING)
    if "paper_by" in rule:
        key = lookup(record, rule["paper_by"]["field"])
        paper = rule["paper_by"]["values"].get(key, _MISSING)
        if paper is _MISSING:
            return False, None, None
    if value is _MISSING:
        return False, None, None
    if "equals" in rule:
        return value == rule["equals"], value, paper
    if rule.get("truthy"):
        return bool(value), value, paper
    if "below" in rule:
        return value < rule["below"], value, paper
    if paper is not _MISSING:
        return value != paper, value, paper
    return False, None, None


def protocol_notes(record: dict, rules: list[dict] | None) -> list[str]:
    """The notes of every rule that fires on this record (empty when it follows the paper)."""
    notes = []
    for rule in rules or []:
        fires, value, paper = _applies(rule, record)
        if not fires:
            continue
        names = {name: lookup(record, path) for name, path in (rule.get("vars") or {}).items()}
        names = {k: (None if v is _MISSING else v) for k, v in names.items()}
        notes.append(rule["note"].format(value=value, paper=None if paper is _MISSING else paper,
                                         details=_details(record, rule.get("details")), **names))
    return notes
