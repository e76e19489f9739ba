"""LAMA as THUDM/P-tuning runs it: training facts, reference query ids, GPT-2 label position, record fields.

The reference's rules are restated here literally from LAMA/cli.py and LAMA/p_tuning/modeling.py
(docs/lama-protocol.md gives the lines) and compared with the suite's code on real data and tiny models.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

from bench.backbones.scoring import target_logits
from bench.errors import ConfigError
from bench.lama import data as lama_data
from bench.lama.evaluation import build_candidates, render_facts
from bench.lama.reference import REFERENCE_LOOP, TRAIN_TARGET_SHIFT, render_query
from bench.lama.training import LamaRelationTask, pad_id_of
from bench.paths import data_dir
from bench.prompts import parse_template, ptuning_text

# skips at run time, after the session fixture prepared data/ from ../shared (a collection-time
# check would skip every test on a clean clone, where data/ does not exist yet)
pytestmark = pytest.mark.usefixtures("lama_data")


def _raw_facts(folder: str, relation: str, split: str) -> list[tuple[str, str]]:
    path = data_dir() / "lama" / "facts" / folder / relation / f"{split}.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["sub_label"], r["obj_label"]) for r in rows]


def test_lama29k_trains_on_original_filtered_by_the_29k_list(capsys):
    """cli.py L96-98/L113 read fact-retrieval/original for every vocabulary; dataset.py L24-26 filters by it."""
    words = {line.strip() for line in (data_dir() / "lama" / "vocab" / "29k" / "bert-base-cased.txt")
             .read_text(encoding="utf-8").splitlines() if line.strip()}
    default = lama_data.train_facts_of({"variant": "lama29k"})
    assert default == "original"
    totals = {"train": [0, 0], "dev": [0, 0]}
    lines = []
    for relation in lama_data.relation_ids():
        counts = []
        for split in ("train", "dev"):
            facts = lama_data.load_facts(relation, split, "lama29k", train_facts=default) or []
            kept, _ = lama_data.filter_facts(facts, words)
            expected = [fact for fact in _raw_facts("original", relation, split) if fact[1] in words]
            assert [(f.sub_label, f.obj_label) for f in kept] == expected, (relation, split)
            rob = lama_data.load_facts(relation, split, "lama29k", train_facts="original_rob") or []
            n_rob = len(lama_data.filter_facts(rob, words)[0])
            totals[split][0] += len(kept)
            totals[split][1] += n_rob
            counts.append(f"{split} {len(kept)} (original_rob {n_rob})")
        lines.append(f"{relation}: " + ", ".join(counts))
    with capsys.disabled():
        print("\nLAMA-29k training facts per relation (original filtered by the 29k list):\n" + "\n".join(lines))
        print(f"total: train {totals['train'][0]}, dev {totals['dev'][0]}; AutoPrompt's original_rob: "
              f"train {totals['train'][1]}, dev {totals['dev'][1]}")
    # the sizes the issue names (22.5k vs 25k train facts), as the prepared data gives them
    assert totals == {"train": [22593, 25164], "dev": [5962, 6574]}


def test_lama29k_test_facts_are_the_same_either_way():
    """The test facts do not depend on train_facts: original_rob test == original test filtered by the 29k list."""
    words = set(lama_data.load_vocab("lama29k", "roberta-large"))
    for relation in lama_data.relation_ids():
        ours = lama_data.load_facts(relation, "test", "lama29k", train_facts="original")
        assert ours == lama_data.load_facts(relation, "test", "lama29k", train_facts="original_rob")
        kept = {(f.sub_label, f.obj_label) for f in lama_data.filter_facts(ours, words)[0]}
        assert kept == {f for f in _raw_facts("original", relation, "test") if f[1] in words}, relation


def test_options_are_checked_with_the_allowed_values():
    with pytest.raises(ConfigError, match=r"task.train_facts='rob' is not allowed; choose one of original, original_rob"):
        lama_data.train_facts_of({"train_facts": "rob"})
    with pytest.raises(ConfigError, match=r"task.protocol='code' is not allowed; choose one of paper, reference"):
        lama_data.protocol_of({"protocol": "code"})
    assert lama_data.protocol_of({}) == "paper"


def test_task_configs_carry_the_agreed_keys():
    from hydra import compose, initialize_config_dir

    from bench.paths import REPO_ROOT

    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        for task in ("lama", "lama29k"):
            cfg = compose(config_name="config", overrides=[f"task={task}"])
            assert (cfg.task.train_facts, cfg.task.protocol) == ("original", "paper")
            assert (cfg.trainer.drop_last, cfg.trainer.eval_before_epoch) == (False, False)


# --- query ids -----------------------------------------------------------------------------------------

def reference_manual_ids(tokenizer, family: str, template: str, subject: str) -> list[int]:
    """modeling.py L76-83, restated: ' ' + the filled template, cut at [Y] (GPT) or [Y] -> mask (BERT-style)."""
    if family == "clm":
        query = re.sub(r"\[Y\].*", "", template.replace("[X]", subject))
    else:
        query = template.replace("[X]", subject).replace("[Y]", tokenizer.mask_token)
    return tokenizer(" " + query)["input_ids"]


TEMPLATES = ["[X] is located in [Y] .", "The capital of [X] is [Y] .", "[Y] is the birthplace of [X] .",
             "[X] plays [Y] music .", "[X] is a [Y] by profession ."]
SUBJECTS = ["Paris", "Baden-Baden", "Ernst Lubitsch", "São Paulo"]


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-roberta", "tiny-bert"])
def test_reference_query_ids_follow_the_reference_rule(tiny_backbone, name):
    backbone = tiny_backbone(name)
    tok, family = backbone.tokenizer, backbone.family
    for text in TEMPLATES:
        for subject in SUBJECTS:
            prompt = render_query(parse_template(text), {"x": subject}, tok, family, "reference")
            expected = reference_manual_ids(tok, family, text, subject)
            assert prompt.input_ids == expected, (text, subject)
            # evaluated slot: the last query token for GPT (label_mask = length - 1), the mask otherwise
            slot = len(expected) - 1 if family == "clm" else expected.index(tok.mask_token_id)
            assert prompt.target_positions == [slot]


def test_reference_gpt2_query_golden_tokens(tiny_backbone):
    tok = tiny_backbone("tiny-gpt2").tokenizer
    located = parse_template("[X] is located in [Y] .")
    reference = render_query(located, {"x": "Paris"}, tok, "clm", "reference")
    assert tok.convert_ids_to_tokens(reference.input_ids) == ["ĠParis", "Ġis", "Ġlocated", "Ġin", "Ġ"]
    assert reference.input_ids[-1] == 220  # GPT-2's lone-space token
    paper = render_query(located, {"x": "Paris"}, tok, "clm", "paper")
    assert tok.convert_ids_to_tokens(paper.input_ids) == ["Paris", "Ġis", "Ġlocated", "Ġin"]
    first = render_query(parse_template("[Y] is the birthplace of [X] ."), {"x": "Paris"}, tok, "clm", "reference")
    assert tok.convert_ids_to_tokens(first.input_ids) == ["Ġ"]


def test_reference_roberta_query_golden_tokens(tiny_backbone):
    tok = tiny_backbone("tiny-roberta").tokenizer
    prompt = render_query(parse_template("[X] is located in [Y] ."), {"x": "Paris"}, tok, "mlm", "reference")
    assert tok.convert_ids_to_tokens(prompt.input_ids) == ["<s>", "ĠParis", "Ġis", "Ġlocated", "Ġin", "<mask>", "Ġ.",
                                                           "</s>"]


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-bert", "tiny-roberta"])
def test_pseudo_token_queries_equal_the_reference_get_query(tiny_backbone, name):
    """modeling.py L85-103: BERT-style [CLS] P*a [MASK] P*b tokens(' '+x) P*c [SEP]; GPT P*a tokens(' '+x) P*b."""
    backbone = tiny_backbone(name)
    tok, family = backbone.tokenizer, backbone.family
    shape = [3, 3, 0] if family == "clm" else [3, 3, 3]
    template = parse_template(ptuning_text(shape, order="code", mlm=family != "clm"))
    for subject in SUBJECTS:
        prompt = render_query(template, {"x": subject}, tok, family, "reference")
        sub = tok.convert_tokens_to_ids(tok.tokenize(" " + subject))
        P = -1  # the pseudo-token placeholder
        if family == "clm":
            expected = [P] * 3 + sub + [P] * 3
        else:
            expected = [tok.cls_token_id, *[P] * 3, tok.mask_token_id, *[P] * 3, *sub, *[P] * 3, tok.sep_token_id]
        ids = [P if i in prompt.soft_positions else t for i, t in enumerate(prompt.input_ids)]
        assert ids == expected, subject
        assert prompt.target_positions == [len(ids) - 1 if family == "clm" else 4]


def test_other_families_and_pair_slots_are_refused(tiny_backbone):
    tok = tiny_backbone("tiny-gpt2").tokenizer
    with pytest.raises(ConfigError, match="no LAMA query for family 'seq2seq'"):
        render_query(parse_template("[X] is located in [Y] ."), {"x": "Paris"}, tok, "seq2seq", "reference")


# --- the GPT-2 training position ---------------------------------------------------------------------------

def test_reference_gpt2_loss_trains_the_position_before_the_evaluated_one(tiny_backbone):
    """gpt_out (modeling.py L150-156): labels at the last query position, Hugging Face shifts them by one."""
    backbone = tiny_backbone("tiny-gpt2")
    model, tok = backbone.model.eval(), backbone.tokenizer
    template = parse_template("[X] is located in [Y] .")
    facts = [lama_data.Fact("P17", "Paris", "France"), lama_data.Fact("P17", "Ernst Lubitsch Baden-Baden", "Germany")]
    candidates = build_candidates(["France", "Germany"], tok, "clm")
    items = render_facts(facts, template, tok, "clm", candidates, protocol="reference")

    # the reference, restated: pad with the pad (else unk) id, mask = query != pad, labels -100 but at length - 1
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.unk_token_id
    queries = [reference_manual_ids(tok, "clm", template.text, f.sub_label) for f in facts]
    width = max(len(q) for q in queries)
    input_ids = torch.tensor([q + [pad] * (width - len(q)) for q in queries])
    attention = input_ids != pad
    last = attention.long().sum(dim=1) - 1
    gold = torch.tensor([tok.convert_tokens_to_ids("Ġ" + f.obj_label) for f in facts])
    labels = torch.full_like(input_ids, -100).scatter_(1, last.unsqueeze(1), gold.unsqueeze(1))
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention.long(), labels=labels)
        rows = torch.arange(len(facts))
        trained = F.cross_entropy(out.logits[rows, last - 1], gold)
        evaluated = F.cross_entropy(out.logits[rows, last], gold)
    assert out.loss.item() == pytest.approx(trained.item(), rel=1e-5)  # the loss reads position length - 2 ...
    assert abs(out.loss.item() - evaluated.item()) > 1e-3  # ... not the evaluated position length - 1
    assert [it.target_positions for it in items] == [[int(p)] for p in last]  # evaluation reads length - 1

    # the suite under protocol=reference trains that same position (mean over the batch, like HF's loss)
    task = LamaRelationTask("P17", {"train": items}, candidates, pad_id_of(tok),
                            train_shift=TRAIN_TARGET_SHIFT["clm"])
    batch = task.train_batches(8, torch.Generator().manual_seed(0))[0]
    with torch.no_grad():
        ours = task.loss(target_logits(model, batch), batch)
    assert ours.item() == pytest.approx(out.loss.item(), rel=1e-5)
    paper = LamaRelationTask("P17", {"train": items}, candidates, pad_id_of(tok))
    pbatch = paper.train_batches(8, torch.Generator().manual_seed(0))[0]
    with torch.no_grad():
        assert paper.loss(target_logits(model, pbatch), pbatch).item() == pytest.approx(evaluated.item(), rel=1e-5)


def test_drop_last_leaves_out_the_partial_batch(tiny_backbone):
    tok = tiny_backbone("tiny-bert").tokenizer
    words = ["France", "Germany", "Italy"]
    candidates = build_candidates(words, tok, "mlm")
    facts = [lama_data.Fact("P17", f"Town {i}", words[i % 3]) for i in range(19)]
    items = render_facts(facts, parse_template("[X] is located in [Y] ."), tok, "mlm", candidates)
    task = LamaRelationTask("P17", {"train": items}, candidates, pad_id_of(tok))
    full = task.train_batches(8, torch.Generator().manual_seed(0))
    dropped = task.train_batches(8, torch.Generator().manual_seed(0), drop_last=True)
    assert [len(b.labels) for b in full] == [8, 8, 3] and [len(b.labels) for b in dropped] == [8, 8]
    assert all(torch.equal(a.input_ids, b.input_ids) for a, b in zip(full, dropped, strict=False))


def test_reference_loop_settings_reach_the_trainer():
    from bench.lama.runner import reference_trainer

    base = {"drop_last": False, "eval_before_epoch": False, "prefer_later_on_tie": False, "lr": 1e-5}
    assert reference_trainer({"protocol": "paper"}, base) is base
    assert reference_trainer({"protocol": "reference"}, base) == {**base, **REFERENCE_LOOP}
    assert REFERENCE_LOOP == {"drop_last": True, "eval_before_epoch": True, "prefer_later_on_tie": True}


# --- a LAMA-29k run through the runner: which facts trained, which protocol, recorded in extra ----------------

RUN_FACTS = [("Paris", "France"), ("Berlin", "Germany"), ("Rome", "Italy"), ("Madrid", "Spain"),
             ("London", "England"), ("Lyon", "France"), ("Munich", "Germany"), ("Milan", "Italy")]


def _write_29k_tree(root) -> None:
    """original: 6 train / 2 dev facts; original_rob (AutoPrompt's): 4 train / 2 dev; test the same in both."""
    lama = root / "lama"
    (lama / "vocab" / "29k").mkdir(parents=True)
    words = sorted({o for _, o in RUN_FACTS})
    (lama / "vocab" / "29k" / "gpt2-xl.txt").write_text("".join(f"Ġ{w}\n" for w in words))
    (lama / "relations.jsonl").write_text(json.dumps({"relation": "P17"}) + "\n")
    rows = [{"predicate_id": "P17", "sub_label": s, "obj_label": o} for s, o in RUN_FACTS]
    splits = {"original": {"train": rows[:6], "dev": rows[6:], "test": rows[:5]},
              "original_rob": {"train": rows[2:6], "dev": rows[:2], "test": rows[:5]}}
    for folder, chosen in splits.items():
        path = lama / "facts" / folder / "P17"
        path.mkdir(parents=True)
        for split, picked in chosen.items():
            (path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in picked))


@pytest.mark.parametrize(("train_facts", "protocol"), [("original", "reference"), ("original_rob", "paper")])
def test_run_records_the_training_facts_and_protocol(tiny_backbone, tmp_path, monkeypatch, train_facts, protocol):
    import copy
    import dataclasses

    from bench.lama.runner import run_lama
    from bench.methods.ptuning import PTuning

    base = tiny_backbone("tiny-gpt2")
    backbone = dataclasses.replace(base, model=copy.deepcopy(base.model))
    _write_29k_tree(tmp_path / "data")
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    cfg = {"task": {"name": "lama29k", "variant": "lama29k", "relations": "all", "eval_splits": ["dev", "test"],
                    "selection_split": "dev", "report_split": "test", "batch_size": 64,
                    "train_facts": train_facts, "protocol": protocol},
           "model": {"name": "tiny-gpt2", "lama_vocab_key": "gpt2-xl"},
           "method": {"name": "ptuning"}, "seed": 34, "tag": None, "paths": {"results_dir": str(tmp_path / "results")},
           "template": {"name": "ptuning_lama", "kind": "ptuning", "shape": {"clm": [3, 3, 0]}},
           "trainer": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "schedule": "exponential", "gamma": 0.98,
                       "batch_size": 4, "max_epochs": 3, "early_stopping_patience": 20, "grad_clip": None}}
    payload = run_lama(cfg, backbone, PTuning())
    extra = payload["extra"]
    assert (extra["train_facts"], extra["protocol"]) == (train_facts, protocol)
    reference = protocol == "reference"
    assert extra["loop"] == dict.fromkeys(REFERENCE_LOOP, reference)
    training = extra["training"]["P17"]
    n_train = 6 if train_facts == "original" else 4
    assert training["n_train"] == n_train == extra["filter_counts"]["train"]["P17"]["n_file"]
    # reference: floor(6 / 4) = 1 step per epoch, 3 epochs, dev scored before epochs 0, 1, 2 only
    steps = 3 * (n_train // 4 if reference else -(-n_train // 4))
    assert training["steps"] == steps and training["epochs"] == 3
    assert payload["metrics"]["test"]["groups"]["P17"]["n"] == 5
