"""The found prompts as a table of their own (relation -> trigger tokens), as the AutoPrompt paper lists them.

``python -m bench.search table <set name>`` writes ``results/tables/<set name>.{md,csv}`` from the
set's provenance: relation, trigger tokens, the saved template, accepted flips, the best dev
log-likelihood and the dev P@1 of the saved text.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from bench.errors import DataError
from bench.io_utils import atomic_write_text
from bench.paths import results_dir
from bench.search.prompt_set import provenance_path

COLUMNS = ("relation", "trigger tokens", "template", "accepted", "dev log-lik", "dev P@1")


def rows_of(provenance: dict, templates: dict[str, str]) -> list[list[str]]:
    out = []
    for relation, info in provenance["relations"].items():
        p1 = info.get("dev_p_at_1")
        out.append([relation, " ".join(info["trigger_tokens"]), templates.get(relation, ""), str(info["accepted"]),
                    f"{info['best_dev_loglik']:.3f}", "" if p1 is None else f"{100 * p1:.1f}"])
    for relation, why in provenance.get("skipped", {}).items():
        out.append([relation, f"(not searched: {why})", "", "", "", ""])
    return sorted(out, key=lambda r: (len(r[0]), r[0]))


def markdown(provenance: dict, rows: list[list[str]]) -> str:
    model, macro = provenance["model"], provenance.get("dev_macro_p_at_1")
    macro_text = "n/a" if macro is None else f"{100 * macro:.1f}"
    head = (f"# AutoPrompt prompts searched here: {provenance['name']}\n\n"
            f"Model {model['name']} ({model.get('revision')}), {provenance['variant']}, train facts "
            f"{provenance['train_facts']}, seed {provenance['seed']}, {provenance['iterations']} iterations"
            f"{'' if provenance['iterations'] == 1000 else ' (the reference: 1,000)'}; "
            f"dev P@1 in percent (saved text, ordinary LAMA evaluation), dev macro P@1 "
            f"{macro_text}.\n\n")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return head + "\n".join(lines) + "\n"


def write_table(name: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    path = provenance_path(name)
    if not path.is_file():
        raise DataError(f"no provenance for prompt set {name!r}", file=path,
                        fix="run the search first: python -m bench.search autoprompt ... (docs/autoprompt.md)")
    provenance = json.loads(path.read_text(encoding="utf-8"))
    set_file = path.with_name(f"{name}.jsonl")
    templates = {}
    if set_file.is_file():
        for line in set_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                templates[row["relation"]] = row["template"]
    rows = rows_of(provenance, templates)
    folder = out_dir or results_dir() / "tables"
    buf = io.StringIO()
    csv.writer(buf).writerows([list(COLUMNS), *rows])
    md, csv_path = folder / f"{name}.md", folder / f"{name}.csv"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(md, markdown(provenance, rows))
    atomic_write_text(csv_path, buf.getvalue())
    return md, csv_path
