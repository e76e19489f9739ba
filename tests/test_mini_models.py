"""Mini-world: corpus selection, masking, the BPE trainer, the majority baseline, and a reduced model that learns.

The reduced models (conf/model/mini-*-reduced.yaml) are built once into <models_dir> (data/models by
default) and reused by later runs; the first build takes a couple of minutes.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from bench.lama.baselines import majority_baseline, majority_objects
from bench.pretrain import bpe
from bench.pretrain.corpus import Sentence, from_subject, select
from bench.pretrain.data import Encoded, clm_batch, crop_after_object, encode, mlm_batch


def _line(text: str, obj: str, split: str, fact: str, sub: str = "Ann") -> Sentence:
    start = text.index(obj)
    return Sentence(text, start, start + len(obj), sub, obj, fact.split("|")[0], split, fact)


# ------------------------------------------------------------------ corpus


def test_select_holds_out_no_test_sentence_and_caps_lines_per_fact():
    lines = [_line(f"Ann {i} was born in Paris.", "Paris", "test", "P19|a|b") for i in range(10)]
    lines += [_line(f"Bob {i} lives in Rome.", "Rome", "train", f"P551|b{i % 3}|r") for i in range(300)]
    lines += [_line("Ann 3 was born in Paris.", "Paris", "train", "P20|a|b")]  # same text as a test line
    chosen = select(lines, cap_test=4, cap_other=2, heldout_fraction=0.2)
    assert chosen.heldout, "a 20% held-out slice of 300 train sentences is not empty"
    held_texts = {s.text for s in chosen.heldout}
    assert not held_texts & {s.text for s in lines if s.split == "test"}
    assert not held_texts & {s.text for s in chosen.train}
    per_fact = Counter(s.fact for s in chosen.train)
    assert per_fact["P19|a|b"] == 4
    assert all(n <= 2 for fact, n in per_fact.items() if fact != "P19|a|b")
    again = select(list(reversed(lines)), cap_test=4, cap_other=2, heldout_fraction=0.2)
    assert [s.text for s in again.train] == [s.text for s in chosen.train]  # order-free


def test_from_subject_starts_the_line_at_a_subject_named_before_the_object():
    line = Sentence("In 1990 the Toyota Corolla was made by Toyota.", 39, 45, "Toyota Corolla", "Toyota",
                    "P176", "test", "P176|a|b")
    cut = from_subject(line)
    assert cut.text == "Toyota Corolla was made by Toyota."
    assert cut.text[cut.obj_start:cut.obj_end] == "Toyota" and cut.obj_start == 27
    after = _line("Paris is where Ann was born.", "Paris", "test", "P19|a|b", sub="Ann")
    unnamed = _line("She was born in Paris.", "Paris", "test", "P19|a|b", sub="Ann")
    first = _line("Ann was born in Paris.", "Paris", "test", "P19|a|b", sub="Ann")
    assert from_subject(after) is after and from_subject(unnamed) is unnamed and from_subject(first) is first


class _Tok:
    """Whitespace tokenizer with offsets, enough for encode()."""

    cls_token_id, sep_token_id, pad_token_id, mask_token_id, eos_token_id = 1, 2, 0, 3, 2

    def __call__(self, texts, add_special_tokens, return_offsets_mapping):
        ids, offsets = [], []
        for text in texts:
            spans, at = [], 0
            for word in text.split():
                at = text.index(word, at)
                spans.append((at, at + len(word)))
                at += len(word)
            ids.append([10 + i for i in range(len(spans))])
            offsets.append(spans)
        return {"input_ids": ids, "offset_mapping": offsets}

    def __len__(self):
        return 100


def test_encode_crops_around_object_and_subject():
    words = [f"w{i}" for i in range(40)]
    words[30], words[25] = "Paris", "Ann"
    line = _line(" ".join(words), "Paris", "test", "P19|a|b", sub="Ann")
    (item,) = encode([line], _Tok(), max_length=12, specials=True)
    assert len(item.ids) == 12 and item.ids[0] == 1 and item.ids[-1] == 2
    assert item.ids[item.obj[0]] == 10 + 30  # the object token survives the crop, at the reported position
    assert 10 + 25 in item.ids  # and so does the subject


def test_mlm_batch_masks_the_object_span_and_scores_only_selected_positions():
    items = [Encoded((1, 10, 11, 12, 13, 2), (3, 4)), Encoded((1, 20, 21, 2), (1, 3))]
    batch = mlm_batch(items, _Tok(), salient_rate=1.0, random_rate=0.0, generator=torch.Generator().manual_seed(0))
    assert batch.input_ids[0, 3] == 3 and batch.input_ids[1, 1] == 3 and batch.input_ids[1, 2] == 3
    assert sorted(zip(batch.rows.tolist(), batch.cols.tolist(), strict=True)) == [(0, 3), (1, 1), (1, 2)]
    assert batch.targets.tolist() == [12, 20, 21] and batch.salient.all()
    none = mlm_batch(items, _Tok(), salient_rate=0.0, random_rate=0.0, generator=torch.Generator().manual_seed(0))
    assert none.targets.numel() == 0


def test_clm_batch_scores_the_positions_that_predict_the_object():
    items = [Encoded((10, 11, 12, 13), (2, 3)), Encoded((20, 21), (1, 2))]
    batch = clm_batch(items, pad_id=0, random_rate=0.0, generator=torch.Generator().manual_seed(0))
    assert sorted(zip(batch.rows.tolist(), batch.cols.tolist(), strict=True)) == [(0, 1), (1, 0)]
    assert sorted(batch.targets.tolist()) == [12, 21]
    full = clm_batch(items, pad_id=0, random_rate=1.0, generator=torch.Generator().manual_seed(0))
    assert full.targets.numel() == 3 + 1  # every next-token position, padding excluded


# ------------------------------------------------------------------ byte-level BPE


def test_bpe_trainer_is_deterministic_and_makes_forced_words_whole():
    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 5
    first, info = bpe.build_tokenizer(texts, vocab_size=280, forced=["ĠMontevideo", "Ġcatalogue"])
    second, _ = bpe.build_tokenizer(list(texts), vocab_size=280, forced=["Ġcatalogue", "ĠMontevideo"])
    assert first.get_vocab() == second.get_vocab()
    assert info["learned_merges"] > 0 and info["forced_merges"] > 0
    assert first.tokenize(" Montevideo") == ["ĠMontevideo"]
    assert first.tokenize("the catalogue") == ["the", "Ġcatalogue"]
    assert first.tokenize(" the cat") == ["Ġthe", "Ġcat"]  # learned merges still apply
    assert first.decode(first(" Montevideo, Ünïcode")["input_ids"]) == " Montevideo, Ünïcode"  # byte-level: lossless


# ------------------------------------------------------------------ majority baseline


@pytest.fixture
def lama_dir(tmp_path, monkeypatch):
    root = tmp_path / "lama"
    (root / "vocab" / "34k").mkdir(parents=True)
    (root / "relations.jsonl").write_text(json.dumps({"relation": "P1"}) + "\n" + json.dumps({"relation": "P2"}) + "\n")
    (root / "vocab" / "34k" / "k.txt").write_text("Paris\nRome\nOslo\n")

    def facts(rel, split, objs):
        folder = root / "facts" / "original" / rel
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{"predicate_id": rel, "sub_label": f"s{i}", "obj_label": o} for i, o in enumerate(objs)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    facts("P1", "train", ["Rome", "Paris", "Paris", "Lyon", "Lyon", "Lyon"])  # Lyon is most frequent but not allowed
    facts("P1", "test", ["Paris", "Paris", "Rome", "Lyon"])
    facts("P2", "dev", ["Oslo", "Rome", "Oslo"])  # no train file: dev decides
    facts("P2", "test", ["Oslo", "Rome"])
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    return root


def test_majority_baseline_counts_train_objects_after_the_vocabulary_filter(lama_dir):
    allowed = {"Paris", "Rome", "Oslo"}
    assert majority_objects(["P1", "P2"], "lama34k", allowed) == {"P1": ("Paris", "train"), "P2": ("Oslo", "dev")}
    result = majority_baseline("lama34k", allowed)
    assert result["groups"]["P1"]["n"] == 3  # the Lyon test fact is filtered out, as for the model
    assert result["groups"]["P1"]["p_at_1"] == pytest.approx(2 / 3)
    assert result["groups"]["P2"]["p_at_1"] == pytest.approx(1 / 2)
    assert result["overall"]["macro_over_relations"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert majority_objects(["P1"], "lama34k", None)["P1"] == ("Lyon", "train")


# ------------------------------------------------------------------ training loop


def _recipe(arch: str) -> dict:
    return {"seed": 3, "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                                 "max_positions": 16, "dropout": 0.1},
            "objective": {"salient_rate": 0.8, "random_rate": 0.3},
            "train": {"steps": 4, "batch_size": 2, "lr": 1e-3, "bf16": False, "threads": torch.get_num_threads(),
                      "log_every": 2}}


_ITEMS = [Encoded((1, 10 + i, 20 + i, 30 + i, 2), (2, 3)) for i in range(6)]


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_pretraining_is_deterministic_given_the_seed(arch):
    from bench.pretrain.train import pretrain

    runs = [pretrain(arch, _recipe(arch), _Tok(), _ITEMS, _ITEMS[:2], progress=False) for _ in range(2)]
    first, second = (r.model.state_dict() for r in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert [e["step"] for e in runs[0].log] == [2, 4]
    assert [e["loss"] for e in runs[0].log] == [e["loss"] for e in runs[1].log]
    assert set(runs[0].heldout) >= {"loss", "salient"}


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_selected_position_logits_equal_the_full_output_layer(arch):
    """Only scored positions go through the output layer: same logits as the model's full forward."""
    from bench.pretrain.data import LossBatch
    from bench.pretrain.model import make_model, selected_logits

    torch.manual_seed(0)
    model = make_model(arch, _recipe(arch)["model"], _Tok()).eval()
    ids = torch.tensor([[1, 11, 12, 13, 2], [1, 21, 22, 2, 0]])
    mask = (ids != 0).long()
    rows, cols = torch.tensor([0, 0, 1]), torch.tensor([1, 3, 2])
    batch = LossBatch(ids, mask, rows, cols, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.bool))
    full = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(selected_logits(model, batch), full[rows, cols])


def test_cropping_after_the_object_keeps_the_causal_loss_and_its_gradients():
    """random_rate 0 scores only object-predicting positions; later tokens cannot change them."""
    from bench.pretrain.model import losses, make_model

    items = [Encoded((1, 11, 12, 13, 14, 15, 2), (2, 4)), Encoded((1, 21, 22, 23, 2), (3, 4)),
             Encoded((31, 32, 33, 2), (0, 2))]
    cropped = crop_after_object(items)
    assert [it.ids for it in cropped] == [(1, 11, 12, 13), (1, 21, 22, 23), (31, 32)]
    torch.manual_seed(0)
    model = make_model("gpt2", _recipe("gpt2")["model"], _Tok()).eval()
    results = []
    for group in (items, cropped):
        batch = clm_batch(group, pad_id=0, random_rate=0.0, generator=torch.Generator().manual_seed(0))
        assert batch.targets.tolist() == [12, 13, 23, 32]  # by hand: the object tokens, in row order
        model.zero_grad()
        loss, _ = losses(model, batch)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    for whole, short in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(whole, short)


def test_loading_an_unbuilt_mini_model_refuses_with_the_build_command(tmp_path):
    from bench.backbones.loading import load_backbone, load_model_config
    from bench.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match=r"mini model 'mini-bert' is not built yet.*make mini-models"):
        load_backbone(load_model_config("mini-bert"), device="cpu", dtype="fp32", models_dir=tmp_path)
    assert not list(tmp_path.rglob("*.safetensors"))  # nothing was trained


def test_make_models_builds_only_the_random_weight_models():
    from bench.backbones.configs import MODEL_CONF_DIR, load_model_config
    from bench.models.tiny import is_random_build

    chosen = sorted(p.stem for p in MODEL_CONF_DIR.glob("*.yaml") if is_random_build(load_model_config(p.stem)))
    assert chosen == ["tiny-albert", "tiny-bert", "tiny-gpt2", "tiny-roberta", "tiny-t5"]
