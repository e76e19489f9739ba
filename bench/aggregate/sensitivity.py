"""Template sensitivity: the P-Tuning paper's Table 1 (P17, four prompts) and the study widened to every relation.

Records in, tables out:
- ``sensitivity_p17``: P@1 on relation P17 per prompt (the paper's four, matched by prompt text
  from any manual run, plus any other ``p17_sensitivity`` rank we ran), the paper's number, the
  difference (for the paper's model only), and P-Tuning's P17 P@1 beside them.
- ``sensitivity_<set>``: per relation, the spread of P@1 over the paraphrased prompts of a set
  (ParaRel, LPAQA paraphrases): min-max, sd, the manual prompt and P-Tuning.
- ``sensitivity_summary``: per model and set, worst / first / best prompt (macro over relations),
  mean spread, and manual and P-Tuning on the same relations.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bench.aggregate.lama_tables import column_of, row_label, split_rank
from bench.aggregate.render import fmt, write_table
from bench.records import iter_records

P17 = "P17"
P17_SET = "p17_sensitivity"
PARAPHRASE_SETS = ("pararel", "lpaqa_paraphrase")
PROMPT_COLUMNS = ["row", "model", "tag", "variant", "method", "set", "rank", "column", "relation", "prompt",
                  "p_at_1", "n", "n_reconstructed", "record"]


def norm_prompt(text: str) -> str:
    """Whitespace-insensitive prompt text: single spaces, no space before final punctuation."""
    return re.sub(r"\s+([.?!,;:])", r"\1", " ".join(str(text).split()))


def prompt_frame(runs_dir: Path, split: str = "test") -> pd.DataFrame:
    """One row per (LAMA record, relation): the prompt text used and its P@1 (percent)."""
    rows = []
    for _, record in iter_records(runs_dir):
        spec = record["spec"]
        if spec.get("task") != "lama":
            continue
        base, rank = split_rank(spec["template"])
        texts = record.get("extra", {}).get("templates", {})
        for relation, entry in record["metrics"].get(split, {}).get("groups", {}).items():
            rows.append({"row": row_label(pd.Series(spec)), "model": spec["model"], "tag": spec.get("tag"),
                         "variant": spec.get("variant"), "method": spec["method"], "set": base, "rank": rank,
                         "column": column_of(spec["method"], spec["template"]), "relation": relation,
                         "prompt": texts.get(relation), "p_at_1": 100 * entry["p_at_1"], "n": entry["n"],
                         "n_reconstructed": entry.get("n_reconstructed", 0), "record": record["name"]})
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)


def _first(values: pd.Series) -> float | None:
    return float(values.iloc[0]) if not values.empty else None


def p17_table(prompts: pd.DataFrame, published: pd.DataFrame, variant: str = "lama34k") -> pd.DataFrame:
    """Tidy Table 1: one row per (prompt, our row label) with ours, paper, delta; P-Tuning as prompt 'P-Tuning'."""
    pub = published[(published["table"] == "sensitivity") & (published["variant"] == variant)]
    pub = pub.assign(key=pub["column"].map(norm_prompt))
    ours = prompts[(prompts["relation"] == P17) & (prompts["variant"] == variant)]
    manual = ours[(ours["method"] == "manual") & ours["prompt"].notna()]
    manual = manual.assign(key=manual["prompt"].map(norm_prompt),
                           own=(manual["set"] == P17_SET)).sort_values(["own", "rank"], ascending=[False, True])
    shown = {**dict(zip(manual["key"], manual["prompt"], strict=True)), **dict(zip(pub["key"], pub["column"], strict=True))}
    keys = list(dict.fromkeys([*pub["key"], *manual[manual["own"]]["key"]]))
    if not keys:  # neither published prompts nor p17_sensitivity runs: no table
        return pd.DataFrame()
    labels = sorted(ours["row"].unique())
    cells = []
    for key in keys:
        paper_rows = pub[pub["key"] == key]
        paper = paper_rows.iloc[0] if not paper_rows.empty else None
        for label in labels or [None]:
            hit = manual[(manual["key"] == key) & (manual["row"] == label)]
            value = _first(hit["p_at_1"])
            same_model = paper is not None and not hit.empty and hit["model"].iloc[0] == paper["model"]
            cells.append({"prompt": shown[key], "row": label, "ours": value, "record": _first_str(hit["record"]),
                          "paper": None if paper is None else float(paper["value"]),
                          "paper_model": None if paper is None else paper["model"],
                          "paper_checked": None if paper is None else paper["checked"],
                          "paper_source": None if paper is None else paper["source"],
                          "delta": value - float(paper["value"]) if same_model and value is not None else None})
    for label in labels:
        hit = ours[(ours["row"] == label) & (ours["method"] == "ptuning")]
        cells.append({"prompt": "P-Tuning", "row": label, "ours": _first(hit["p_at_1"]),
                      "record": _first_str(hit["record"]), "paper": None, "paper_model": None,
                      "paper_checked": None, "paper_source": None, "delta": None})
    return pd.DataFrame(cells)


def _first_str(values: pd.Series) -> str | None:
    return str(values.iloc[0]) if not values.empty else None


def p17_display(tidy: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    labels = [r for r in dict.fromkeys(tidy["row"]) if isinstance(r, str)]
    rows, notes = [], []
    paper_models = sorted({m for m in tidy["paper_model"] if isinstance(m, str)})
    for prompt in dict.fromkeys(tidy["prompt"]):
        part = tidy[tidy["prompt"] == prompt]
        first = part.iloc[0]
        star = "*" if first["paper_checked"] == "no" else ""
        out = {"prompt": prompt, f"paper ({', '.join(paper_models) or '—'})": fmt(first["paper"], 2) + (
            star if first["paper"] is not None and not pd.isna(first["paper"]) else "")}
        for label in labels:
            cell = part[part["row"] == label]
            ours = None if cell.empty else cell["ours"].iloc[0]
            out[label] = fmt(ours, 2)
            if label.split(" [")[0] in paper_models:
                out[f"{label} Δ"] = fmt(None if cell.empty else cell["delta"].iloc[0], 2, signed=True)
            if ours is None or pd.isna(ours):
                notes.append(f"missing: {label} x {prompt!r} (no finished record)")
        rows.append(out)
    if not labels:
        notes.append("missing: no run scored P17 yet; only the published numbers are shown")
    notes += ["P@1 (percent) on LAMA relation P17, test split; Δ only for the model the paper used",
              "the mirror's P17 test facts are partly reconstructed (see the CSV of the LAMA tables for real-only)",
              "P-Tuning: our trained prompt for P17 (LAMA-34k run); the paper's Table 1 has no such row"]
    return pd.DataFrame(rows), notes


def spread_frame(prompts: pd.DataFrame, sets: tuple[str, ...] = PARAPHRASE_SETS, variant: str = "lama34k") -> pd.DataFrame:
    """Per (row, set, relation): P@1 spread over the set's prompts, with manual and P-Tuning beside it."""
    ours = prompts[prompts["variant"] == variant]
    para = ours[(ours["method"] == "manual") & ours["set"].isin(sets)]
    if para.empty:
        return pd.DataFrame()
    stats = (para.groupby(["row", "set", "relation"])["p_at_1"]
             .agg(n_prompts="count", min="min", median="median", max="max", sd="std").reset_index())
    stats["range"] = stats["max"] - stats["min"]
    first = para[para["rank"] == 0].set_index(["row", "set", "relation"])["p_at_1"].rename("first")
    stats = stats.join(first, on=["row", "set", "relation"])
    for name, mask in (("manual", (ours["column"] == "lama")), ("ptuning", (ours["column"] == "ptuning"))):
        side = ours[mask].drop_duplicates(["row", "relation"]).set_index(["row", "relation"])["p_at_1"].rename(name)
        stats = stats.join(side, on=["row", "relation"])
    return stats


def spread_display(stats: pd.DataFrame, set_name: str) -> pd.DataFrame:
    part = stats[stats["set"] == set_name]
    out = pd.DataFrame({"relation": sorted(part["relation"].unique())})
    for label in sorted(part["row"].unique()):
        rows = part[part["row"] == label].set_index("relation")
        out[f"{label}: min–max"] = [f"{fmt(rows.at[r, 'min'])}–{fmt(rows.at[r, 'max'])}" if r in rows.index else "—"
                                    for r in out["relation"]]
        out[f"{label}: sd (n)"] = [f"{fmt(rows.at[r, 'sd'])} ({int(rows.at[r, 'n_prompts'])})" if r in rows.index
                                   else "—" for r in out["relation"]]
        out[f"{label}: manual"] = [fmt(rows.at[r, "manual"]) if r in rows.index else "—" for r in out["relation"]]
        out[f"{label}: PT"] = [fmt(rows.at[r, "ptuning"]) if r in rows.index else "—" for r in out["relation"]]
    return out


def summary_frame(stats: pd.DataFrame) -> pd.DataFrame:
    """Per (row, set): macro over relations of the worst, first and best prompt, spread, manual, P-Tuning."""
    agg = stats.groupby(["row", "set"]).agg(
        relations=("relation", "count"), prompts_per_relation=("n_prompts", "mean"), worst=("min", "mean"),
        first=("first", "mean"), best=("max", "mean"), mean_range=("range", "mean"), mean_sd=("sd", "mean"),
        manual=("manual", "mean"), ptuning=("ptuning", "mean"), ptuning_relations=("ptuning", "count"))
    return agg.reset_index()


def write_sensitivity_tables(runs_dir: Path, published: pd.DataFrame, out_dir: Path) -> list[Path]:
    prompts = prompt_frame(runs_dir)
    written: list[Path] = []
    p17 = p17_table(prompts, published)
    if not p17.empty:
        display, notes = p17_display(p17)
        written += write_table(out_dir, "sensitivity_p17", display, p17,
                               "Template sensitivity on P17 (P-Tuning paper, Table 1)", notes)
    stats = spread_frame(prompts)
    if stats.empty:
        return written
    notes = ["P@1 in percent per relation, test split; sd: sample standard deviation over the set's prompts "
             "(n prompts for that relation); manual: the LAMA prompt; PT: P-Tuning; '—': no run"]
    for set_name in sorted(stats["set"].unique()):
        written += write_table(out_dir, f"sensitivity_{set_name}", spread_display(stats, set_name),
                               stats[stats["set"] == set_name], f"P@1 spread over {set_name} prompts", notes)
    summary = summary_frame(stats)
    shown = summary.copy()
    for col in ("prompts_per_relation", "worst", "first", "best", "mean_range", "mean_sd", "manual", "ptuning"):
        shown[col] = shown[col].map(fmt)
    written += write_table(out_dir, "sensitivity_summary", shown, summary, "Prompt sensitivity, macro over relations",
                           ["worst / first / best: mean over relations of the lowest, rank-0 and highest prompt's P@1 "
                            "(best is an oracle choice on the test split)", "manual and P-Tuning: mean over the "
                            "same relations where those runs exist (ptuning_relations counts them)"])
    return written
