"""``prompt_tuning``: the prepended prompt, its initialisations, what training changes, saving."""

import pytest
import torch
from test_ptuning import FACTS, NAMES, WORDS, fresh, train_steps

from bench.errors import ConfigError
from bench.lama.evaluation import build_candidates, render_facts
from bench.lama.training import LamaRelationTask, pad_id_of
from bench.methods.prompt_tuning import PromptTuning
from bench.methods.soft import with_prepended_prompt
from bench.prompts import parse_template, render
from bench.prompts.pieces import tokenizer_info
from bench.prompts.verbalizer import target_token_ids

LEADING_SPECIALS = {"tiny-bert": 1, "tiny-roberta": 1, "tiny-albert": 1, "tiny-gpt2": 0, "tiny-t5": 0}
TEMPLATE = "The capital of [X] is [Y] ."


def relation_task(method, backbone):
    candidates = build_candidates(WORDS, backbone.tokenizer, backbone.family)
    template = method.adapt_template(parse_template(TEMPLATE))
    items = render_facts(FACTS, template, backbone.tokenizer, backbone.family, candidates)
    return LamaRelationTask("P36", {"train": items, "dev": items}, candidates, pad_id_of(backbone.tokenizer))


def table(backbone) -> torch.Tensor:
    return backbone.model.get_input_embeddings().weight.detach()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", ["[X] is located in [Y] .", "The capital of [X] is [Y]."])
def test_prepended_prompt_leaves_the_rest_of_the_rendering_unchanged(tiny_backbone, name, text):
    backbone = tiny_backbone(name)
    tok, family = backbone.tokenizer, backbone.family
    plain = render(parse_template(text), {"x": "Italy"}, tok, family)
    start_space = tokenizer_info(tok).start_space
    prompted = render(with_prepended_prompt(parse_template(text), 4, start_space), {"x": "Italy"}, tok, family,
                      soft_token_id=7)
    k = LEADING_SPECIALS[name]
    assert prompted.soft_positions == [k, k + 1, k + 2, k + 3]
    assert prompted.input_ids[k : k + 4] == [7] * 4
    assert prompted.input_ids[:k] + prompted.input_ids[k + 4 :] == plain.input_ids
    if family == "seq2seq":  # the decoder side is untouched
        assert prompted.decoder_input_ids == plain.decoder_input_ids and prompted.target_positions == [1]
    else:
        assert prompted.target_positions == [p + 4 for p in plain.target_positions]


def test_prompt_tuning_refuses_templates_with_their_own_pseudo_tokens(tiny_backbone):
    method = PromptTuning(length=3)
    method.setup(tiny_backbone("tiny-bert"))
    with pytest.raises(ConfigError, match="already has"):
        method.adapt_template(parse_template("[P:2] [X] is [Y] ."))


@pytest.mark.parametrize("name", ["tiny-albert", "tiny-t5"])
def test_initialisations(tiny_backbone, name):
    backbone = tiny_backbone(name)
    emb = table(backbone)
    e = emb.shape[1]

    def prompt(**kwargs):
        torch.manual_seed(0)
        method = PromptTuning(**kwargs)
        method.setup(backbone)
        return method.encoder.embedding.weight.detach()

    def rows_in_table(rows, population):
        found = [[i for i in range(population) if torch.equal(emb[i], row)] for row in rows]
        assert all(found), "a prompt row is not an embedding of the population"
        return [ids[0] for ids in found]

    random = prompt(length=20, init="random")
    assert random.shape == (20, e) and float(random.abs().max()) <= 0.5 and 0.25 < float(random.std()) < 0.33

    sampled = rows_in_table(prompt(length=20, init="vocab"), 5000)
    assert len(set(sampled)) == 20  # without replacement
    few = rows_in_table(prompt(length=5, init="vocab", vocab_population=3), 3)
    assert set(few) <= {0, 1, 2}  # more tokens than candidates: with replacement

    ids = backbone.tokenizer.encode("capital city of", add_special_tokens=False)
    assert len(ids) < 7
    text = prompt(length=7, init="text", init_text="capital city of")
    assert torch.equal(text, emb[torch.tensor((ids * 7)[:7])])

    labels = prompt(length=6, init="labels", init_labels=["Paris", "London"])
    for i, word in enumerate(["Paris", "London"]):
        pieces = target_token_ids(word, backbone.tokenizer, prefix_space=True)
        assert torch.allclose(labels[i], emb[torch.tensor(pieces)].mean(dim=0), atol=0, rtol=0)
    rows_in_table(labels[2:], 5000)

    ensemble = prompt(length=4, init="random", num_prompts=3).view(3, 4, e)
    assert not torch.equal(ensemble[0], ensemble[1]) and not torch.equal(ensemble[1], ensemble[2])


@pytest.mark.parametrize("name", NAMES)
def test_trainable_count_is_length_times_input_embedding_size(tiny_backbone, name):
    backbone = tiny_backbone(name)
    method = PromptTuning(length=20, num_prompts=2)
    method.setup(backbone)
    e = 32 if name == "tiny-albert" else 64  # ALBERT: embedding size E = 32, hidden H = 64
    assert backbone.model.get_input_embeddings().embedding_dim == e
    assert sum(p.numel() for p in method.trainable_parameters()) == 2 * 20 * e
    assert [n for n, _ in method.encoder.named_parameters()] == ["embedding.weight"]


@pytest.mark.parametrize("name", NAMES)
def test_frozen_training_changes_only_the_prompt(tiny_backbone, name):
    backbone = fresh(tiny_backbone(name))
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    torch.manual_seed(0)
    method = PromptTuning(length=5, backbone_dropout=True)
    method.setup(backbone)
    task = relation_task(method, backbone)
    prompt_before = method.encoder.embedding.weight.detach().clone()
    train_steps(method, task, steps=3, lr=0.1)
    after = backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = (method.encoder.embedding.weight.detach() != prompt_before).all(dim=1)
    assert bool(changed.all())  # every prompt vector moved


@pytest.mark.parametrize("name", NAMES)
def test_loss_goes_down_on_four_facts(tiny_backbone, name):
    backbone = tiny_backbone(name)
    torch.manual_seed(0)
    method = PromptTuning(length=5)
    method.setup(backbone)
    losses = train_steps(method, relation_task(method, backbone), steps=10, lr=0.1)
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < losses[0] - 2e-3, losses


def test_save_load_round_trip_is_exact_and_small(tiny_backbone, tmp_path):
    backbone = tiny_backbone("tiny-t5")
    torch.manual_seed(0)
    method = PromptTuning(length=5)
    method.setup(backbone)
    task = relation_task(method, backbone)
    train_steps(method, task, steps=2, lr=0.1)
    batch = task.train_batches(4, torch.Generator().manual_seed(1))[0]
    with torch.no_grad():
        expected = method.scorer()(batch)
    path = method.save_trainable(tmp_path / "prompt.pt")

    torch.manual_seed(1)
    other = PromptTuning(length=5)
    other.setup(backbone)
    with torch.no_grad():
        assert not torch.equal(other.scorer()(batch), expected)
    other.load_trainable(path)
    with torch.no_grad():
        assert torch.equal(other.scorer()(batch), expected)
    saved = torch.load(path, weights_only=True)
    assert saved["method"] == "prompt_tuning"
    assert {k: tuple(v.shape) for k, v in saved["modules"]["prompt_encoder"].items()} == {"embedding.weight": (5, 64)}
    assert path.stat().st_size < 5 * 64 * 4 + 5_000
