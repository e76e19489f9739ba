"""LAMA rows under the two protocols: where they agree (BERT's manual evaluation) and where a published number
may stand (only beside rows run under the protocol that produced it, whatever models ran; issue 31, issue 27 item 9).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tables_fixture import P17_PROMPTS, record, save

from bench.lama import data as lama_data
from bench.lama.evaluation import build_candidates, render_facts
from bench.lama.runner import relation_templates
from bench.paths import REPO_ROOT
from bench.tables.__main__ import build_all

PUBLISHED = REPO_ROOT / "results" / "paper"
MANUAL = {"name": "lama", "kind": "prompt_set", "prompt_set": "lama", "rank": 0}


def _rendered(backbone, protocol: str, variant: str = "lama34k", per_relation: int = 40) -> list:
    """Every relation's first test facts with the manual prompt, rendered under ``protocol``."""
    tok, family = backbone.tokenizer, backbone.family
    candidates = build_candidates(lama_data.load_vocab(variant, "bert-base-cased" if family == "mlm" else "gpt2-xl"),
                                  tok, family)
    templates, _ = relation_templates(MANUAL, lama_data.relation_ids())
    items = []
    for relation, template in templates.items():
        facts = lama_data.load_facts(relation, "test", variant) or []
        kept, _ = lama_data.filter_facts(facts, set(candidates.word_to_id))
        items += render_facts(kept[:per_relation], template, tok, family, candidates, protocol=protocol)
    return items


@pytest.mark.usefixtures("lama_data")
def test_bert_manual_queries_are_the_same_under_both_protocols(tiny_backbone):
    """BERT's WordPiece drops the reference's leading space and keeps [MASK] where the paper puts [Y], so every
    fact of the 41 manual prompts gets the same ids and evaluated slot, hence the same P@1, under both protocols."""
    bert = tiny_backbone("tiny-bert")
    paper, reference = _rendered(bert, "paper"), _rendered(bert, "reference")
    assert len(paper) == len(reference) > 1000
    for a, b in zip(paper, reference, strict=True):
        assert (a.input_ids, a.target_positions, a.gold_id) == (b.input_ids, b.target_positions, b.gold_id), a.fact
    # the same check tells GPT-2's protocols apart: the reference's trailing space token changes every query
    gpt2 = tiny_backbone("tiny-gpt2")
    differ = [a.input_ids != b.input_ids for a, b in
              zip(_rendered(gpt2, "paper", "lama29k", 5), _rendered(gpt2, "reference", "lama29k", 5), strict=True)]
    assert differ and all(differ)


@pytest.mark.usefixtures("lama_data")
def test_bert_manual_run_gives_the_same_numbers_under_both_protocols(tiny_backbone, tmp_path):
    from bench.lama.runner import run_lama
    from bench.methods.manual import ManualPrompt

    bert = tiny_backbone("tiny-bert")
    payloads = {}
    for protocol in ("paper", "reference"):
        cfg = {"task": {"name": "lama", "variant": "lama34k", "relations": ["P17", "P19", "P101", "P1412"],
                        "eval_splits": ["test"], "selection_split": "dev", "report_split": "test", "batch_size": 64,
                        "limit_per_relation": 30, "protocol": protocol},
               "model": {"name": "tiny-bert", "lama_vocab_key": "bert-base-cased"}, "method": {"name": "manual"},
               "template": MANUAL, "seed": 34, "tag": None, "paths": {"results_dir": str(tmp_path)}}
        method = ManualPrompt()
        method.setup(bert)
        payloads[protocol] = run_lama(cfg, bert, method)
    paper, reference = (payloads[p]["metrics"]["test"] for p in ("paper", "reference"))
    assert paper["overall"]["n_facts"] == 120 and paper == reference
    assert payloads["reference"]["extra"]["protocol"] == "reference"


# --- tables: published numbers and protocols -------------------------------------------------------------------

def _config(protocol: str, arch: str = "gpt2") -> dict:
    return {"task": {"relations": ["P17", "P19"], "protocol": protocol}, "model": {"arch": arch, "family": "clm"},
            "method": {"name": "manual"}}


def _record(*args, protocol: str, arch: str = "gpt2", rank: int | None = None, **kw) -> dict:
    """Schema 2 (the protocol is part of the record name through its config hash)."""
    return record(*args, config=_config(protocol, arch), schema=2, rank=rank, config_hash=f"{protocol[:3]}00000",
                  **kw)


def _runs(root: Path) -> Path:
    """Tiny models under both protocols (as `make reproduce-lama MODELS=tiny-bert,tiny-gpt2` leaves them), and
    bert-base-cased / gpt2-medium under both, so that a published number has a row of each protocol to go beside."""
    runs = root / "runs"
    for protocol, value in (("reference", 0.25), ("paper", 0.05)):
        for model in ("tiny-gpt2", "gpt2-medium"):
            tag = "smoke" if model.startswith("tiny") else None
            save(runs, _record("lama", model, "manual", "lama", {"P17": value, "P19": value}, tag=tag,
                               protocol=protocol, variant="lama29k"))
            save(runs, _record("lama", model, "ptuning", "ptuning_lama", {"P17": value}, tag=tag,
                               protocol=protocol, variant="lama29k"))
        for model in ("tiny-bert", "bert-base-cased"):
            tag = "smoke" if model.startswith("tiny") else None
            save(runs, _record("lama", model, "manual", "lama", {"P17": value}, tag=tag, protocol=protocol,
                               arch="bert"))
            for rank, text in enumerate(P17_PROMPTS):
                save(runs, _record("lama", model, "manual", "p17_sensitivity", {"P17": value + rank / 100}, rank=rank,
                                   tag=tag, texts={"P17": text}, protocol=protocol, arch="bert"))
    return runs


def _build(tmp_path: Path, models: list[str] | None) -> dict[str, pd.DataFrame]:
    out = tmp_path / ("tables_" + "_".join(models or ["all"]))
    build_all(tmp_path, out, models=models, published_dir=PUBLISHED, only=["lama34k", "lama29k", "sensitivity_p17"])
    return {name: pd.read_csv(out / f"{name}.csv") for name in ("lama34k", "lama29k", "sensitivity_p17")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol_rows")
    _runs(root)
    return root, _build(root, None), _build(root, ["tiny-bert", "tiny-gpt2"])


def _protocol_of(root: Path, name: str) -> str:
    (path,) = (root / "runs" / "lama").glob(f"{name}.json")
    return json.loads(path.read_text())["config"]["task"]["protocol"]


def test_no_cell_beside_a_published_number_ran_another_protocol(built):
    root, every, _ = built
    beside = 0
    for name, tidy in every.items():
        compared = tidy[tidy["paper"].notna() & tidy["records"].notna()]
        for records in compared["records"]:
            for record_name in records.split(";"):
                assert _protocol_of(root, record_name) == "reference", (name, record_name)
                beside += 1
        # every paper-protocol record is in the table, with no published number beside it
        paper_rows = tidy[tidy["records"].fillna("").map(
            lambda r: any(_protocol_of(root, n) == "paper" for n in r.split(";") if n))]
        assert len(paper_rows) and paper_rows["paper"].isna().all() and paper_rows["delta"].isna().all(), name
    assert beside >= 6  # bert-base-cased manual (34k, P17 x 4) and gpt2-medium MP, PT (29k) are compared


def test_paper_protocol_rows_are_their_own_marked_rows(tmp_path):
    runs = _runs(tmp_path)
    from bench.tables import build_table, load_published, load_specs, read_frames

    (spec,) = load_specs(only=["lama29k"])
    published = pd.concat([load_published(p) for p in sorted(PUBLISHED.glob("*.csv"))], ignore_index=True)
    table = build_table(spec, read_frames(runs), published)
    shown = table.display.set_index("Model")
    assert shown.loc["gpt2-medium", "MP"] == "25.0 / 20.3* (+4.7)"  # (25 + 25) / 2 beside the published 20.3
    assert shown.loc["gpt2-medium (protocol paper)", "MP"] == "5.0†"  # no published number beside it
    assert any(n.startswith("† protocol 'paper'") and "gpt2-medium (protocol paper)" in n for n in table.notes)


def test_p17_paper_column_shows_the_published_numbers_whatever_models_ran(built):
    _, _, tiny = built
    p17 = tiny["sensitivity_p17"]
    paper = p17.dropna(subset=["paper"]).drop_duplicates("Prompt").set_index("Prompt")["paper"]
    assert paper.to_dict() == {P17_PROMPTS[0]: 31.29, P17_PROMPTS[1]: 19.78, P17_PROMPTS[2]: 31.40,
                               P17_PROMPTS[3]: 51.08}  # results/paper/published.csv, Table 1
    assert p17["delta"].isna().all()  # Δ only for the paper's model (bert-base-cased), which did not run here


def test_lama_tables_show_the_published_rows_whatever_models_ran(built):
    _, _, tiny = built
    l34 = tiny["lama34k"].set_index(["Model", "column"])
    assert l34.loc[("bert-base-cased", "lama"), "paper"] == 31.1
    assert l34.loc[("bert-large-cased", "ptuning"), "paper"] == 50.6
    assert pd.isna(l34.loc[("bert-base-cased", "lama"), "value"])  # the paper's row, no run of ours in it
    l29 = tiny["lama29k"].set_index(["Model", "column"])
    assert l29.loc[("gpt2-medium", "ptuning"), "paper"] == 46.5 and l29.loc[("megatron-11b", "ptuning"), "paper"] == 64.2
    # our tiny rows are there too, the paper-protocol ones apart and without a published number
    assert l29.loc[("tiny-gpt2 [smoke]", "lama"), "value"] == 25.0
    assert l29.loc[("tiny-gpt2 [smoke] (protocol paper)", "lama"), "value"] == 5.0


@pytest.mark.usefixtures("lama_data")
def test_protocol_effect_counts_what_differs(tiny_backbone):
    """bench.lama.protocol_effect on two facts per relation: BERT's queries and top-1 never differ; every GPT-2
    query does (the reference's leading space and trailing space token), on the same facts."""
    from bench.lama.protocol_effect import measure

    bert = measure(tiny_backbone("tiny-bert"), "bert-base-cased", "lama34k", per_relation=2)
    assert bert["n_facts"] >= 70 and bert["queries_differ"] == bert["top1_differ"] == 0
    assert bert["p_at_1"]["paper"] == bert["p_at_1"]["reference"]
    gpt2 = measure(tiny_backbone("tiny-gpt2"), "gpt2-xl", "lama29k", per_relation=2)
    assert gpt2["queries_differ"] == gpt2["n_facts"] >= 70
    assert gpt2["p_at_1"]["paper"]["n_facts"] == gpt2["p_at_1"]["reference"]["n_facts"] == gpt2["n_facts"]


def test_the_prompt_set_figure_draws_the_papers_number_beside_released_code_rows_only(tmp_path):
    from bench.tables.figures import figures_for, load_figure_specs
    from bench.tables.frame import read_frames

    runs = tmp_path / "runs"
    for protocol, values in (("reference", {"P17": 0.2, "P19": 0.4}), ("paper", {"P17": 0.0, "P19": 0.2})):
        save(runs, _record("lama", "bert-base-cased", "manual", "lama", values, protocol=protocol, arch="bert"))
    paper = pd.DataFrame([{"table": "lama", "variant": "lama34k", "model": "bert-base-cased", "column": "lama",
                           "value": 31.1, "source": "s", "checked": "yes", "note": ""}])
    spec = {s["name"]: s for s in load_figure_specs()}["p_at_1_by_prompt_set"]
    (fig,) = dict(figures_for(spec, read_frames(runs), paper)).values()
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_xticklabels()]
    assert rows == ["bert-base-cased", "bert-base-cased (protocol paper)"]
    diamonds = [(round(float(x)), float(y)) for line in ax.lines if line.get_gid() == "paper"
                for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]
    assert diamonds == [(0, 31.1)]  # beside the released-code row only, not beside the paper-protocol row
