"""``ptuning``: prompt encoders, what training changes, parameter counts, saving, a LAMA run end to end."""

import copy
import dataclasses
import json

import pytest
import torch
from torch import nn

from bench.backbones.scoring import pad_batch
from bench.lama.data import Fact
from bench.lama.evaluation import build_candidates, predict, render_facts
from bench.lama.training import LamaRelationTask, pad_id_of
from bench.methods.prompt_encoders import PromptEncoder
from bench.methods.ptuning import PTuning
from bench.prompts import parse_template, render
from bench.train import build_optimizer

NAMES = ["tiny-bert", "tiny-roberta", "tiny-albert", "tiny-gpt2", "tiny-t5"]
WORDS = ["France", "Germany", "Italy", "Spain", "England", "Paris", "Berlin", "Rome", "Madrid", "London"]
FACTS = [Fact("P36", s, o) for s, o in [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"),
                                        ("Spain", "Madrid")]]


def fresh(backbone):
    """A private copy of the shared session backbone (training must not leak into other tests)."""
    return dataclasses.replace(backbone, model=copy.deepcopy(backbone.model))


def template_for(backbone, block: int = 2):
    text = f"[P:{block}] [X] [P:{block}] [Y]" + ("" if backbone.family == "clm" else f" [P:{block}]")
    return parse_template(text)


def relation_task(method, backbone, facts=FACTS, block: int = 2):
    candidates = build_candidates(WORDS, backbone.tokenizer, backbone.family)
    assert len(candidates.word_to_id) == len(WORDS)
    template = method.adapt_template(template_for(backbone, block))
    items = render_facts(facts, template, backbone.tokenizer, backbone.family, candidates)
    return LamaRelationTask("P36", {"train": items, "dev": items}, candidates, pad_id_of(backbone.tokenizer))


def train_steps(method, task, steps: int, lr: float, backbone_lr: float | None = None) -> list[float]:
    optimizer = build_optimizer(method, {"lr": lr, "backbone_lr": backbone_lr, "optimizer": "adam"})
    batch = task.train_batches(len(task.items["train"]), torch.Generator().manual_seed(0))[0]
    scorer, losses = method.scorer(), []
    method.train_mode()
    for _ in range(steps):
        loss = task.loss(scorer(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    method.eval_mode()
    return losses


def lstm_count(n: int, e: int) -> int:
    """By hand: Embedding(n, E); bi-LSTM with E/2 units per direction, 2 layers; MLP E->E->E.

    One LSTM direction of one layer has 4 gates, each with W_ih (E/2 x input), W_hh (E/2 x E/2),
    b_ih and b_hh (E/2 each); layer 0 reads E inputs, layer 1 reads the 2 x E/2 = E outputs of layer 0.
    """
    h = e // 2
    lstm = 2 * 2 * (4 * h * e + 4 * h * h + 4 * h + 4 * h)  # 2 layers x 2 directions, input size E both times
    mlp = (e * e + e) + (e * e + e)
    return n * e + lstm + mlp


def test_encoder_parameter_counts_match_the_hand_formulas():
    # E = 64, 9 pseudo tokens (the paper's (3, 3, 3) shape)
    assert lstm_count(9, 64) == 576 + 2 * 2 * (4 * 32 * 64 + 4 * 32 * 32 + 2 * 4 * 32) + 2 * (64 * 64 + 64) == 59072
    for n, e in [(9, 64), (6, 32), (3, 768)]:
        assert sum(p.numel() for p in PromptEncoder("lstm", n, e).parameters()) == lstm_count(n, e)
        assert sum(p.numel() for p in PromptEncoder("mlp", n, e).parameters()) == n * e + 2 * (e * e + e)
        assert sum(p.numel() for p in PromptEncoder("identity", n, e).parameters()) == n * e
    # PEFT's MLP shape: E -> h -> h -> E (3 Linear layers)
    assert sum(p.numel() for p in PromptEncoder("mlp", 4, 64, hidden_size=16, mlp_layers=3).parameters()) == \
        4 * 64 + (64 * 16 + 16) + (16 * 16 + 16) + (16 * 64 + 64)


@pytest.mark.parametrize("name", NAMES)
def test_prompts_live_in_the_input_embedding_space(tiny_backbone, name):
    backbone = tiny_backbone(name)
    method = PTuning()
    method.setup(backbone)
    method.adapt_template(template_for(backbone, 3))
    e = backbone.model.get_input_embeddings().embedding_dim
    n = 6 if backbone.family == "clm" else 9
    assert method.prompt_vectors().shape == (n, e)
    assert sum(p.numel() for p in method.trainable_parameters()) == lstm_count(n, e)
    if name == "tiny-albert":  # factorised embeddings: E = 32, hidden H = 64
        assert (e, backbone.model.config.hidden_size) == (32, 64) and lstm_count(9, 32) == 15200


@pytest.mark.parametrize("name", NAMES)
def test_placeholder_id_does_not_matter(tiny_backbone, name):
    backbone = tiny_backbone(name)
    method = PTuning(encoder="mlp")
    method.setup(backbone)
    template = method.adapt_template(template_for(backbone))
    tok = backbone.tokenizer
    scores = []
    for placeholder in [tok.unk_token_id, tok.convert_tokens_to_ids(tok.tokenize("Paris"))[0], 7]:
        rendered = [render(template, {"x": x}, tok, backbone.family, soft_token_id=placeholder) for x in ["Italy", "Spain"]]
        assert all(rendered[0].input_ids[c] == placeholder for c in rendered[0].soft_positions)
        batch = pad_batch([r.input_ids for r in rendered], [r.target_positions for r in rendered], pad_id_of(tok),
                          [r.decoder_input_ids for r in rendered] if rendered[0].decoder_input_ids else None,
                          soft_positions=[r.soft_positions for r in rendered])
        with torch.no_grad():
            scores.append(method.scorer()(batch))
    assert torch.equal(scores[0], scores[1]) and torch.equal(scores[0], scores[2])


def test_slot_counts_and_prompt_indices_are_checked_on_the_host(tiny_backbone):
    """pad_batch counts the pseudo tokens per row and the largest prompt vector asked for, so the
    scorer refuses a bad batch without reading device tensors; a batch without those counts (built
    elsewhere) is still checked, from its tensors."""
    from bench.errors import ConfigError

    backbone = tiny_backbone("tiny-bert")
    method = PTuning(encoder="mlp")
    method.setup(backbone)
    template = method.adapt_template(template_for(backbone))  # 6 pseudo tokens
    tok = backbone.tokenizer
    rendered = [render(template, {"x": x}, tok, backbone.family) for x in ["Italy", "Spain"]]
    args = ([r.input_ids for r in rendered], [r.target_positions for r in rendered], pad_id_of(tok))
    good = pad_batch(*args, soft_positions=[r.soft_positions for r in rendered])
    assert good.soft_per_row == (6, 6) and good.soft_max_id == 5
    short = pad_batch(*args, soft_positions=[rendered[0].soft_positions, rendered[1].soft_positions[:5]])
    assert short.soft_per_row == (6, 5)
    far = pad_batch(*args, soft_positions=[r.soft_positions for r in rendered], prompt_index=[0, 1])
    assert far.soft_max_id == 11
    scorer = method.scorer()
    with torch.no_grad():
        scorer(good)
        for bad, message in ((short, r"6 pseudo tokens, got \[5, 6\]"), (far, "prompt vector 11 but the method has 6")):
            for batch in (bad, dataclasses.replace(bad, soft_per_row=None, soft_max_id=None)):
                with pytest.raises(ConfigError, match=message):
                    scorer(batch)


@pytest.mark.parametrize("name", NAMES)
def test_frozen_training_changes_only_the_prompt_encoder(tiny_backbone, name):
    backbone = fresh(tiny_backbone(name))
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    torch.manual_seed(0)
    method = PTuning(backbone_dropout=True)  # dropout on must not matter to the weights
    method.setup(backbone)
    task = relation_task(method, backbone)
    encoder_before = {k: v.clone() for k, v in method.encoder.state_dict().items()}
    train_steps(method, task, steps=3, lr=1e-2)
    after = backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not p.requires_grad for p in backbone.model.parameters())
    changed = [k for k, v in method.encoder.state_dict().items() if not torch.equal(v, encoder_before[k])]
    assert sorted(changed) == sorted(encoder_before)  # every encoder tensor moved


def test_finetune_setting_trains_the_backbone_at_its_own_learning_rate(tiny_backbone):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from bench.paths import REPO_ROOT

    backbone = fresh(tiny_backbone("tiny-albert"))
    before = {k: v.clone() for k, v in backbone.model.named_parameters()}
    method = instantiate(OmegaConf.load(REPO_ROOT / "conf" / "method" / "ptuning_finetune.yaml").component)
    assert isinstance(method, PTuning) and method.tunes_backbone
    method.setup(backbone)
    task = relation_task(method, backbone)
    groups = method.param_groups({"lr": 1e-3, "backbone_lr": 1e-5})
    assert [(g["name"], g["lr"]) for g in groups] == [("method", 1e-3), ("backbone", 1e-5)]
    assert sum(p.numel() for p in groups[1]["params"]) == sum(p.numel() for p in backbone.model.parameters())
    train_steps(method, task, steps=2, lr=1e-3, backbone_lr=1e-4)
    after = dict(backbone.model.named_parameters())
    assert not torch.equal(before["albert.embeddings.word_embeddings.weight"],
                           after["albert.embeddings.word_embeddings.weight"])
    assert sum(not torch.equal(before[k], after[k]) for k in before) > len(before) // 2


@pytest.mark.parametrize("name", NAMES)
def test_loss_goes_down_on_four_facts(tiny_backbone, name):
    backbone = tiny_backbone(name)
    torch.manual_seed(0)
    method = PTuning()
    method.setup(backbone)
    task = relation_task(method, backbone)
    losses = train_steps(method, task, steps=10, lr=1e-2)
    # random tiny encoders barely read their input, so the drop is small for masked LMs (~0.006-0.02 nats)
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < losses[0] - 2e-3, losses


def test_save_load_round_trip_is_exact_and_small(tiny_backbone, tmp_path):
    backbone = tiny_backbone("tiny-roberta")
    torch.manual_seed(0)
    method = PTuning()
    method.setup(backbone)
    task = relation_task(method, backbone)
    train_steps(method, task, steps=2, lr=1e-2)
    batch = task.train_batches(4, torch.Generator().manual_seed(1))[0]
    with torch.no_grad():
        expected = method.scorer()(batch)
    path = method.save_trainable(tmp_path / "P36.pt")

    torch.manual_seed(123)  # a different random start, overwritten by the load
    other = PTuning()
    other.setup(backbone)
    other.adapt_template(template_for(backbone))
    with torch.no_grad():
        assert not torch.equal(other.scorer()(batch), expected)
    other.load_trainable(path)
    with torch.no_grad():
        assert torch.equal(other.scorer()(batch), expected)

    saved = torch.load(path, weights_only=True)
    tensors = saved["modules"]["prompt_encoder"]
    assert sum(t.numel() for t in tensors.values()) == lstm_count(6, 64)
    assert all(k.split(".")[0] in ("embedding", "lstm", "mlp") for k in tensors)
    backbone_bytes = sum(p.numel() * p.element_size() for p in backbone.model.parameters())
    assert path.stat().st_size < lstm_count(6, 64) * 4 + 20_000 < backbone_bytes / 10


def test_left_to_right_template_with_tokens_after_the_target_is_refused(tiny_backbone):
    method = PTuning()
    method.setup(tiny_backbone("tiny-gpt2"))
    with pytest.raises(Exception, match="after"):
        method.adapt_template(parse_template("[P:2] [X] [P:2] [Y] [P:2]"))


# --------------------------------------------------------------------------------------------------
# end to end: bench.run.execute on a small prepared-data tree, then an independent recomputation

E2E_FACTS = {
    "P36": [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("England", "London"), ("Paris", "France"), ("Berlin", "Germany"), ("Rome", "Italy")],
    "P17": [("Paris", "France"), ("Berlin", "Germany"), ("Rome", "Italy"), ("Madrid", "Spain"),
            ("London", "England"), ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome")],
}


def write_lama_tree(root):
    lama = root / "lama"
    (lama / "vocab" / "34k").mkdir(parents=True)
    (lama / "vocab" / "34k" / "bert-base-cased.txt").write_text("\n".join(WORDS) + "\n")
    (lama / "relations.jsonl").write_text("".join(json.dumps({"relation": r}) + "\n" for r in E2E_FACTS))
    for relation, pairs in E2E_FACTS.items():
        folder = lama / "facts" / "original" / relation
        folder.mkdir(parents=True)
        rows = [{"predicate_id": relation, "sub_label": s, "obj_label": o, "uuid": f"{relation}-{i}"}
                for i, (s, o) in enumerate(pairs)]
        for split, chosen in {"train": rows[:6], "dev": rows[6:], "test": rows[2:]}.items():
            (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chosen))


@pytest.mark.slow
def test_lama_run_end_to_end_then_recompute_p_at_1_by_hand(tiny_backbone, tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    import bench.backbones.loading as loading
    from bench.paths import REPO_ROOT
    from bench.run import execute

    backbone = fresh(tiny_backbone("tiny-bert"))  # loaded before the data folder moves (models live under it)
    write_lama_tree(tmp_path / "data")
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(loading, "load_backbone", lambda *a, **k: backbone)
    overrides = ["task=lama", "model=tiny-bert", "method=ptuning", "template=ptuning_lama", "device=cpu",
                 "task.relations=[P36,P17]", "trainer.max_epochs=3", "trainer.batch_size=3", "trainer.lr=3e-3",
                 "method.component.backbone_dropout=false", "paths.root=" + str(tmp_path), "tag=e2e"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    record_file = execute(cfg)
    record = json.loads(record_file.read_text())

    n = 9  # (3, 3, 3) for masked LMs
    assert record["params"]["trainable"] == lstm_count(n, 64) == record["params"]["method_modules"]
    training = record["extra"]["training"]
    assert sorted(training) == ["P17", "P36"]
    assert all(t["steps"] == 2 * t["epochs"] == 6 and t["n_train"] == 6 for t in training.values())
    assert all(t["best_epoch"] in (0, 1, 2) and t["best_step"] == 2 * (t["best_epoch"] + 1) for t in training.values())
    test = record["metrics"]["test"]
    assert sorted(test["groups"]) == ["P17", "P36"] and test["groups"]["P36"]["n"] == 6

    # independent recomputation for P36: rebuild the encoder from the saved tensors with plain torch
    # modules, one fact at a time, full-vocabulary logits from model(inputs_embeds=...), candidates by masking
    path = tmp_path / "results" / training["P36"]["artifact"]
    assert path.parent.name == record_file.stem  # results/artifacts/<record name>/P36.pt
    state = torch.load(path, weights_only=True)["modules"]["prompt_encoder"]
    lstm = nn.LSTM(64, 32, num_layers=2, bidirectional=True, batch_first=True)
    lstm.load_state_dict({k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")})
    mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    mlp.load_state_dict({k[len("mlp."):]: v for k, v in state.items() if k.startswith("mlp.")})
    tok, model = backbone.tokenizer, backbone.model.eval()
    word_ids = [tok.convert_tokens_to_ids(w) for w in WORDS]
    allowed = torch.full((model.config.vocab_size,), float("-inf"))
    allowed[word_ids] = 0.0
    facts = E2E_FACTS["P36"][2:]
    by_hand = []
    with torch.no_grad():
        vectors = mlp(lstm(state["embedding.weight"].unsqueeze(0))[0])[0]
        for subject, _ in facts:
            ids = ([tok.cls_token_id, *[tok.unk_token_id] * 3] + tok.encode(subject, add_special_tokens=False)
                   + [tok.unk_token_id] * 3 + [tok.mask_token_id] + [tok.unk_token_id] * 3 + [tok.sep_token_id])
            embeds = model.get_input_embeddings()(torch.tensor([ids]))
            embeds[0, [i for i, t in enumerate(ids) if t == tok.unk_token_id]] = vectors
            logits = model(inputs_embeds=embeds, attention_mask=torch.ones(1, len(ids))).logits[0]
            by_hand.append(int((logits[ids.index(tok.mask_token_id)] + allowed).argmax()))
    hits = sum(pred == tok.convert_tokens_to_ids(obj) for pred, (_, obj) in zip(by_hand, facts, strict=True))
    assert test["groups"]["P36"]["p_at_1"] == hits / 6

    # the same predictions, fact by fact, through the library path with the reloaded method
    method = PTuning()
    method.setup(backbone)
    template = method.adapt_template(parse_template(record["extra"]["templates"]["P36"]))
    method.load_trainable(path)
    candidates = build_candidates(WORDS, tok, backbone.family)
    items = render_facts([Fact("P36", s, o) for s, o in facts], template, tok, backbone.family, candidates)
    assert predict(items, method.scorer(), candidates, pad_id_of(tok), batch_size=4) == by_hand
