"""AutoPrompt's trigger search (bench.search) on tiny-bert: HotFlip candidates against a plain
recomputation, the token filter on hand-picked tokens, fixed-seed reruns, resume after a kill,
and the found prompt set evaluated through the ordinary LAMA run path."""

import json

import pytest
import torch
import torch.nn.functional as F

from bench.lama import data as lama_files
from bench.lama.evaluation import build_candidates
from bench.lama.training import split_items
from bench.paths import REPO_ROOT, configured, models_dir
from bench.prompts.template import parse_template
from bench.search.autoprompt import SearchSettings, search_relation
from bench.search.hotflip import blocked_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


SMALL = {"num_cand": 4, "batch_size": 8, "eval_size": 8, "accumulation_steps": 1, "filter": True, "seed": 3}


def _items(backbone, relation, n_train, n_dev, template="[X] [P:3] [Y] ."):
    cands = build_candidates(lama_files.load_vocab("lama34k", backbone.lama_vocab_key), backbone.tokenizer, "mlm")
    tmpl = parse_template(template)
    task = {"variant": "lama34k"}
    return (split_items(relation, "train", tmpl, backbone, cands, task, n_train)[0],
            split_items(relation, "dev", tmpl, backbone, cands, task, n_dev)[0])


def _search(backbone, tmp_path, train, dev, iters, name="s", blocked=None, on_iteration=None, **changes):
    settings = SearchSettings(template="[X] [P:3] [Y] .", iters=iters, **{**SMALL, **changes})
    rows = backbone.model.get_input_embeddings().weight.size(0)
    blocked = blocked if blocked is not None else blocked_tokens(backbone.tokenizer, rows, {i.gold_id for i in train})
    return search_relation(backbone.model, backbone.tokenizer, "P17", train, dev, settings, blocked,
                           tmp_path / f"{name}.json", {"test": 1, **settings.as_dict(), "iters": None}, on_iteration=on_iteration,
                           progress=False)


def test_token_filter_on_hand_picked_tokens(tiny_backbone):
    tok = tiny_backbone("tiny-bert").tokenizer
    vocab = tok.get_vocab()
    blocked = blocked_tokens(tok, 30000, [vocab["the"]])
    expect = {"the": True,  # a gold object of the training facts
              "Paris": True, "Germany": True,  # capitalised: AutoPrompt's lazy proper-noun filter
              "[CLS]": True, "[MASK]": True,  # special tokens
              "A": False,  # one character: the reference's loop skips it
              "[": True,  # one character, but it could open a template slot when saved (ours)
              "city": False, "born": False, "##s": False}
    assert {w: bool(blocked[vocab[w]]) for w in expect} == expect
    assert blocked[tok.vocab_size:].all()  # rows past the tokenizer's vocabulary are never tokens
    unfiltered = blocked_tokens(tok, 30000, [vocab["the"]], filter_words=False)
    assert not unfiltered[vocab["Paris"]] and not unfiltered[vocab["the"]] and unfiltered[vocab["["]]


def _plain_ids(tok, subject, trigger):
    """[CLS] subject trigger [MASK] . [SEP] built by hand; returns ids, trigger positions, target position."""
    subj = tok(subject, add_special_tokens=False)["input_ids"]
    ids = [tok.cls_token_id, *subj, *trigger, tok.mask_token_id, tok.convert_tokens_to_ids("."), tok.sep_token_id]
    start = 1 + len(subj)
    return ids, list(range(start, start + len(trigger))), start + len(trigger)


def test_one_iteration_candidates_equal_a_plain_hotflip_recomputation(tiny_backbone, lama_data, tmp_path):
    bb = tiny_backbone("tiny-bert")
    train, dev = _items(bb, "P17", 6, 4)
    seen = []
    nothing = torch.zeros(bb.model.get_input_embeddings().weight.size(0), dtype=torch.bool)
    _search(bb, tmp_path, train, dev, iters=1, blocked=nothing, on_iteration=lambda i, s, info: seen.append(info))
    (info,) = seen
    # plain side: one fact at a time, full model forward on input embeddings, loss = mean over the batch
    tok, model = bb.tokenizer, bb.model
    emb = model.bert.embeddings.word_embeddings.weight
    trigger = [tok.mask_token_id] * 3
    grad = torch.zeros(3, emb.size(1))
    for item in train:
        ids, slots, target = _plain_ids(tok, item.fact.sub_label, trigger)
        x = emb[torch.tensor([ids])].detach().requires_grad_(True)
        logp = F.log_softmax(model(inputs_embeds=x).logits[0, target], dim=-1)
        (-logp[tok.convert_tokens_to_ids(item.fact.obj_label)] / len(train)).backward()
        grad += x.grad[0, slots]
    pos = info["position"]
    expected = (-(emb.detach() @ grad[pos])).topk(4).indices.tolist()
    assert info["candidates"] == expected
    # each candidate's score: summed gold log-probability over the (here: all) training facts
    for cand, score in zip(info["candidates"], info["scores"], strict=True):
        flipped = list(trigger)
        flipped[pos] = cand
        total = 0.0
        with torch.no_grad():
            for item in train:
                ids, _, target = _plain_ids(tok, item.fact.sub_label, flipped)
                logits = model(input_ids=torch.tensor([ids])).logits[0, target]
                total += float(F.log_softmax(logits, -1)[tok.convert_tokens_to_ids(item.fact.obj_label)])
        assert score == pytest.approx(total, abs=1e-4)


class Killed(Exception):
    pass


def test_fixed_seed_search_reproduces_its_triggers_and_resumes_after_a_kill(tiny_backbone, lama_data, tmp_path):
    bb = tiny_backbone("tiny-bert")
    train, dev = _items(bb, "P17", 16, 8)
    first = _search(bb, tmp_path, train, dev, iters=6, name="a")
    again = _search(bb, tmp_path, train, dev, iters=6, name="b")
    assert first.best_trigger == again.best_trigger and first.accepted == again.accepted
    assert len(first.accepted) >= 3
    other_seed = _search(bb, tmp_path, train, dev, iters=6, name="c", seed=4)
    assert [a["position"] for a in other_seed.accepted] != [a["position"] for a in first.accepted]

    def kill_after_four(i, state, info):
        if i == 3:
            raise Killed

    with pytest.raises(Killed):
        _search(bb, tmp_path, train, dev, iters=6, name="k", on_iteration=kill_after_four)
    saved = json.loads((tmp_path / "k.json").read_text())
    last = saved["accepted"][-1]["iteration"]
    assert saved["next_iteration"] == last + 1 and not saved["done"]
    resumed_at = []
    done = _search(bb, tmp_path, train, dev, iters=6, name="k", on_iteration=lambda i, s, info: resumed_at.append(i))
    assert resumed_at[0] == last + 1  # from the last accepted trigger, not from the start
    assert done.best_trigger == first.best_trigger and done.accepted == first.accepted and done.done
    short = _search(bb, tmp_path, train, dev, iters=3, name="e")
    assert short.done and short.next_iteration == 3
    longer = _search(bb, tmp_path, train, dev, iters=6, name="e")  # a finished search asked for more goes on
    assert longer.best_trigger == first.best_trigger and longer.accepted == first.accepted
    with pytest.raises(Exception, match="more than iters=3"):
        _search(bb, tmp_path, train, dev, iters=3, name="e")
    settings_changed = pytest.raises(Exception, match="other settings")
    with settings_changed:
        _search(bb, tmp_path, train, dev, iters=6, name="k", num_cand=5)


def test_the_found_prompt_set_evaluates_through_the_ordinary_lama_run(tiny_backbone, lama_data, lama_data_copy, tmp_path,
                                                                      monkeypatch):
    from hydra import compose, initialize_config_dir

    from bench.run import execute
    from bench.search.__main__ import load_settings
    from bench.search.lama import search_lama

    bb = tiny_backbone("tiny-bert")
    data, results, models = lama_data_copy, tmp_path / "results", models_dir()
    cfg = load_settings("autoprompt", ["model=tiny-bert", "relations=P17,P1376", "limit_per_relation=12", "iters=3",
                                       "num_cand=3", "batch_size=6", "eval_size=6", "template='[X] [P:3] [Y] .'"])
    with configured({"data_dir": data, "results_dir": results, "models_dir": models}):
        prov = search_lama(cfg, bb, progress=False)
    name = "autoprompt_search_tiny-bert_lama34k_s0"
    rows = [json.loads(line) for line in (data / "lama" / "prompts" / f"{name}.jsonl").read_text().splitlines()]
    assert {r["relation"] for r in rows} == set(prov["relations"]) | set(prov["skipped"]) - set(prov["skipped"])
    assert prov["model"]["name"] == "tiny-bert" and prov["seed"] == 0 and prov["iterations"] == 3
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = ["device=cpu", "dtype=fp32", "model=tiny-bert", "task=lama", "method=manual", "template=autoprompt_bert",
                 "template.name=autoprompt_search", f"template.prompt_set={name}", "task.relations=[P17,P1376]", "task.limit_per_relation=12",
                 "task.eval_splits=[dev,test]", f"paths.results_dir={results}", f"paths.data_dir={data}",
                 f"paths.models_dir={models}", f"paths.root={REPO_ROOT}"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        record = json.loads(execute(compose(config_name="config", overrides=overrides)).read_text())
    assert record["extra"]["templates"] == {r["relation"]: r["template"] for r in rows}
    assert set(record["metrics"]["test"]["groups"]) == {r["relation"] for r in rows}
    for relation, group in record["metrics"]["dev"]["groups"].items():  # the search's dev score is this path's
        assert group["p_at_1"] == prov["relations"][relation]["dev_p_at_1"]
    from bench.search.table import write_table

    with configured({"data_dir": data, "results_dir": results, "models_dir": models}):
        md, csv_path = write_table(name)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "relation,trigger tokens,template,accepted,dev log-lik,dev P@1"
    for row in rows:  # the table of found prompts: relation -> trigger tokens, as the set holds them
        assert any(line.startswith(f"{row['relation']},{' '.join(row['trigger_tokens'])},") for line in lines)
    assert len(lines) == 1 + len(prov["relations"]) + len(prov["skipped"])


def test_bad_settings_and_causal_models_are_refused_with_the_fix():
    from types import SimpleNamespace

    from bench.errors import ConfigError
    from bench.search.__main__ import load_settings
    from bench.search.lama import search_lama

    with pytest.raises(ConfigError, match="unknown key.*num_candidates.*autoprompt_lama.yaml"):
        load_settings("autoprompt", ["num_candidates=5"])
    cfg = load_settings("autoprompt", ["relations=P17,P19"])
    assert cfg["relations"] == ["P17", "P19"] and cfg["num_cand"] == 10 and cfg["iters"] == 1000
    with pytest.raises(ConfigError, match="masked LMs"):
        search_lama(cfg, SimpleNamespace(family="clm", name="tiny-gpt2"))
    with pytest.raises(ConfigError, match=r"needs \[X\], \[Y\] and trigger slots"):
        search_lama({**cfg, "template": "[X] is in [Y] ."}, SimpleNamespace(family="mlm", name="tiny-bert"))


@pytest.mark.parametrize("name", ["tiny-roberta", "tiny-albert"])
def test_the_search_runs_on_the_other_masked_lm_families(tiny_backbone, lama_data, tmp_path, name):
    bb = tiny_backbone(name)
    train, dev = _items(bb, "P17", 8, 4)
    seen = []
    state = _search(bb, tmp_path, train, dev, iters=3, on_iteration=lambda i, s, info: seen.append(info))
    assert state.done and len(seen) == 3 and state.accepted  # the first flip of a [MASK] trigger is always taken
    vocab = bb.model.get_input_embeddings().weight.size(0)
    assert all(0 <= c < vocab and len(set(info["candidates"])) == 4 for info in seen for c in info["candidates"])
    first = seen[0]  # the first flip: the candidate with the best summed train score, at the drawn position
    best = first["candidates"][max(range(4), key=first["scores"].__getitem__)]
    assert state.accepted[0]["iteration"] == 0 and state.accepted[0]["position"] == first["position"]
    assert state.accepted[0]["token_id"] == best
