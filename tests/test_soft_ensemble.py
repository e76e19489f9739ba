"""Several prompts (an ensemble, or one prompt per task) scored in ONE forward pass of the frozen model."""

import pytest
import torch
from test_ptuning import NAMES

from bench.backbones.scoring import pad_batch
from bench.lama.training import pad_id_of
from bench.methods.prompt_encoders import PromptEncoder
from bench.methods.prompt_tuning import PromptTuning
from bench.methods.ptuning import PTuning
from bench.prompts import parse_template, render

# three "tasks": different templates and inputs of different lengths, equal prompt lengths
TASKS = {
    "prompt_tuning": [("[X] is located in [Y] .", "Italy"), ("The capital of [X] is [Y] .", "the United Kingdom"),
                      ("[X] , which is in [Y] .", "Madrid")],
    "ptuning": [("[P:2] [X] [P:2] [Y]", "Italy"), ("[X] [P:4] [Y]", "the United Kingdom"),
                ("[P:1] The capital of [X] [P:3] is [Y]", "Madrid")],
}


def make(kind: str, backbone):
    torch.manual_seed(0)
    method = PromptTuning(length=4, init="random", num_prompts=3) if kind == "prompt_tuning" \
        else PTuning(encoder="lstm", num_prompts=3)
    method.setup(backbone)
    return method


def rendered(method, backbone, kind):
    out = []
    for text, subject in TASKS[kind]:
        template = method.adapt_template(parse_template(text))
        out.append(render(template, {"x": subject}, backbone.tokenizer, backbone.family))
    return out


def batch_of(prompts, indices, pad_id):
    return pad_batch([p.input_ids for p in prompts], [p.target_positions for p in prompts], pad_id,
                     [p.decoder_input_ids for p in prompts] if prompts[0].decoder_input_ids else None,
                     soft_positions=[p.soft_positions for p in prompts], prompt_index=indices)


@pytest.mark.parametrize("kind", ["prompt_tuning", "ptuning"])
@pytest.mark.parametrize("name", NAMES)
def test_three_prompts_in_one_pass_equal_three_separate_passes(tiny_backbone, name, kind):
    backbone = tiny_backbone(name)
    method = make(kind, backbone)
    examples = rendered(method, backbone, kind)
    assert len({len(p.input_ids) for p in examples}) == 3  # padding is exercised
    pad_id = pad_id_of(backbone.tokenizer)
    scorer = method.scorer()
    calls = []
    hook = backbone.model.get_input_embeddings().register_forward_hook(lambda *args: calls.append(1))
    try:
        # every example with every prompt: 9 rows, one pass
        rows = [(i, k) for k in range(3) for i in range(3)]
        with torch.no_grad():
            together = scorer(batch_of([examples[i] for i, _ in rows], [k for _, k in rows], pad_id))
        per_pass = len(calls)
        # prompt k alone, three passes of the same examples
        separate = []
        for k in range(3):
            calls.clear()
            with torch.no_grad():
                separate.append(scorer(batch_of(examples, [k] * 3, pad_id)))
            assert len(calls) == per_pass  # the batched pass costs one forward, like each single pass
        # one example per task, each with its own prompt (multi-task batch), vs one example at a time
        with torch.no_grad():
            mixed = scorer(batch_of(examples, [0, 1, 2], pad_id))
            alone = [scorer(batch_of([examples[i]], [i], pad_id)) for i in range(3)]
    finally:
        hook.remove()
    assert together.shape == (9, separate[0].shape[1])
    for k in range(3):
        torch.testing.assert_close(together[3 * k : 3 * k + 3], separate[k], atol=1e-5, rtol=0)
        assert (separate[k] - separate[(k + 1) % 3]).abs().max() > 1e-3  # the prompts really differ
    torch.testing.assert_close(mixed, torch.cat(alone), atol=1e-5, rtol=0)


def test_lstm_encoder_runs_each_prompt_as_its_own_sequence():
    torch.manual_seed(0)
    bank = PromptEncoder("lstm", 5, 16, num_prompts=3)
    single = PromptEncoder("lstm", 5, 16, num_prompts=1)
    state = {k: v for k, v in bank.state_dict().items() if not k.startswith("embedding")}
    single.load_state_dict({**state, "embedding.weight": torch.zeros(5, 16)})
    with torch.no_grad():
        out = bank()
        for k in range(3):
            single.embedding.weight.copy_(bank.embedding.weight[5 * k : 5 * k + 5])
            torch.testing.assert_close(out[5 * k : 5 * k + 5], single(), atol=1e-6, rtol=0)


def test_prompt_index_beyond_the_bank_is_an_error(tiny_backbone):
    backbone = tiny_backbone("tiny-gpt2")
    method = make("prompt_tuning", backbone)
    examples = rendered(method, backbone, "prompt_tuning")
    with pytest.raises(Exception, match="out of range"):
        method.scorer()(batch_of(examples[:1], [3], pad_id_of(backbone.tokenizer)))
