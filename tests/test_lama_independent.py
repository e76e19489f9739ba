"""LAMA P@1 through the suite equals a plain recomputation with transformers on the same checkpoint.

The reference side shares no code with the suite: it reads the raw mirror files (facts, relation
templates, 34k vocab JSON), tokenises the whole filled-in sentence with the checkpoint's own
tokenizer, runs one fact at a time through the full model, masks every logit outside the
vocabulary list and takes the argmax. Random tiny models give P@1 near zero, so per-fact
predictions are compared too, not only the rates.
"""

import json

import pytest
import torch
from hydra import compose, initialize_config_dir
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer

from bench.paths import REPO_ROOT, mirror_dir, models_dir
from bench.run import execute

RELATIONS = ["P19", "P101", "P1412"]  # real (not reconstructed) test files; templates end in " ."
LIMIT = 25
FAMILIES = {"tiny-bert": "mlm", "tiny-roberta": "mlm", "tiny-albert": "mlm", "tiny-gpt2": "clm", "tiny-t5": "seq2seq"}


def _raw_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _snapshot(name):
    repo = models_dir() / "hub" / f"models--bench-local--{name}"
    return repo / "snapshots" / (repo / "refs" / "main").read_text().strip()


def _candidate_form(word, name, tokenizer):
    if name in ("tiny-gpt2", "tiny-roberta"):
        return "Ġ" + word
    if name == "tiny-albert":
        return "▁" + word.lower()
    if name == "tiny-t5":
        return "▁" + word
    return word


def _reference(name, family, relation, template, raw_vocab):
    folder = _snapshot(name)
    tok = AutoTokenizer.from_pretrained(folder)
    cls = {"mlm": AutoModelForMaskedLM, "clm": AutoModelForCausalLM, "seq2seq": AutoModelForSeq2SeqLM}[family]
    model = cls.from_pretrained(folder).eval()
    vocab = tok.get_vocab()
    key = "gpt2-xl" if name == "tiny-gpt2" else ("bert-base-cased" if name == "tiny-bert" else "roberta-large")
    words = [w.removeprefix("Ġ") for w in raw_vocab[key]]
    allowed = {w: vocab[_candidate_form(w, name, tok)] for w in words if _candidate_form(w, name, tok) in vocab}
    allowed_ids = torch.tensor(sorted(set(allowed.values())))
    facts = [f for f in _raw_jsonl(mirror_dir() / "lama/fact-retrieval/original" / relation / "test.jsonl")
             if f["obj_label"] in allowed][:LIMIT]
    rows = []
    for fact in facts:
        with torch.no_grad():
            if family == "mlm":
                text = template.replace("[X]", fact["sub_label"]).replace("[Y]", tok.mask_token)
                ids = tok(text)["input_ids"]
                logits = model(input_ids=torch.tensor([ids])).logits[0, ids.index(tok.mask_token_id)]
            elif family == "clm":
                text = template.split("[Y]")[0].replace("[X]", fact["sub_label"]).rstrip()
                ids = tok(text)["input_ids"]
                logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            else:
                text = template.replace("[X]", fact["sub_label"]).replace("[Y]", "<extra_id_0>")
                ids = tok(text)["input_ids"]
                decoder = [model.config.decoder_start_token_id, tok.convert_tokens_to_ids("<extra_id_0>")]
                logits = model(input_ids=torch.tensor([ids]), decoder_input_ids=torch.tensor([decoder])).logits[0, 1]
        masked = torch.full_like(logits, float("-inf"))
        masked[allowed_ids] = logits[allowed_ids]
        pred = int(masked.argmax())
        rows.append([fact["sub_label"], fact["obj_label"], tok.convert_ids_to_tokens(pred), pred == allowed[fact["obj_label"]]])
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_suite_p_at_1_equals_plain_transformers_recomputation(name, tmp_path, tiny_backbone, monkeypatch):
    if mirror_dir() is None:
        pytest.skip("needs the raw LAMA mirror (../shared/data) for the independent side")
    tiny_backbone(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the plain side runs fp32 on the CPU: pin the suite's side too (device=auto would pick bf16 on a GPU host)
    overrides = ["device=cpu", "dtype=fp32", f"model={name}", "task=lama", "method=manual", "template=lama", f"task.relations=[{','.join(RELATIONS)}]",
                 f"task.limit_per_relation={LIMIT}", "task.eval_splits=[test]", "task.save_predictions=true",
                 f"paths.results_dir={tmp_path}", f"paths.root={REPO_ROOT}"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        record = json.loads(execute(compose(config_name="config", overrides=overrides)).read_text())
    raw_vocab = json.loads((mirror_dir() / "lama" / "34k-vocab.json").read_text())
    templates = {r["relation"]: r["template"] for r in _raw_jsonl(mirror_dir() / "lama" / "relations.jsonl")}
    test = record["metrics"]["test"]
    hits_total = n_total = 0
    for relation in RELATIONS:
        reference = _reference(name, FAMILIES[name], relation, templates[relation], raw_vocab)
        ours = test["predictions"][relation]
        assert sorted(r[:3] for r in reference) == sorted(ours), relation  # same facts, same top-1 tokens
        hits = sum(r[3] for r in reference)
        assert test["groups"][relation]["n"] == len(reference) == LIMIT
        assert test["groups"][relation]["p_at_1"] == pytest.approx(hits / len(reference))
        hits_total, n_total = hits_total + hits, n_total + len(reference)
    assert test["overall"]["pooled"] == pytest.approx(hits_total / n_total)
