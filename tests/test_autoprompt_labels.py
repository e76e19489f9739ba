"""AutoPrompt's label-token search (bench.search.label_search) on tiny-bert and LM-BFF's SST-2 k-shot
split: head features and token scores against a plain recomputation, fixed-seed reruns."""

import pytest
import torch

from bench.prompts.template import parse_template
from bench.search.label_search import LabelSearchSettings, features, label_search

TEMPLATE = "{sentence} [P:3] [Y] ."


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def sst2():
    from bench.errors import DataError
    from bench.lmbff.data import load_split

    try:
        rows = load_split("SST-2", "train", 13)
    except DataError as err:
        pytest.skip(f"LM-BFF data is not prepared: {err}")
    return [dict(ex.fields) for ex in rows], [ex.label for ex in rows]


def test_features_are_the_mlm_transform_at_the_mask(tiny_backbone, sst2):
    bb = tiny_backbone("tiny-bert")
    tok, model = bb.tokenizer, bb.model
    examples = sst2[0][:3]
    trigger = [tok.convert_tokens_to_ids(w) for w in ("movie", "was", "really")]
    ours = features(model, tok, "mlm", parse_template(TEMPLATE), examples, trigger)
    for row, ex in enumerate(examples):  # plain: [CLS] sentence trigger [MASK] . [SEP], one at a time
        ids = [tok.cls_token_id, *tok(ex["sentence"], add_special_tokens=False)["input_ids"], *trigger,
               tok.mask_token_id, tok.convert_tokens_to_ids("."), tok.sep_token_id]
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1]
            plain = model.cls.predictions.transform(hidden[0, ids.index(tok.mask_token_id)])
        assert torch.allclose(ours[row], plain, atol=1e-5)


def test_label_tokens_are_the_softmax_over_classes_of_the_projection(tiny_backbone, sst2):
    bb = tiny_backbone("tiny-bert")
    examples, labels = sst2
    settings = LabelSearchSettings(epochs=5, lr=1e-2, k=7, batch_size=8)
    found = label_search(bb.model, bb.tokenizer, "mlm", parse_template(TEMPLATE), examples, labels, 2,
                         settings=settings, progress=False)
    assert found["losses"][-1] < found["losses"][0]  # the projection learns on its training examples
    weight = found["projection"].weight.detach()
    decoder = bb.model.cls.predictions.decoder.weight.detach()
    for cls in range(2):  # plain: softmax over the two classes, token by token, of W e_w (bias unused)
        logits = torch.stack([decoder @ weight[c] for c in range(2)])
        probs = logits.exp() / logits.exp().sum(dim=0, keepdim=True)
        assert found["ids"][cls] == probs[cls].topk(7).indices.tolist()
    again = label_search(bb.model, bb.tokenizer, "mlm", parse_template(TEMPLATE), examples, labels, 2,
                         settings=settings, progress=False)
    assert again["tokens"] == found["tokens"] and again["losses"] == found["losses"]
