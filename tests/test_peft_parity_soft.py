"""Parity with huggingface/peft on the same tiny weights (``prompt_tuning``, ``ptuning``).

Where PEFT and the papers differ (read in peft ``tuners/p_tuning/model.py``, ``peft_model.py``):

- PEFT's LSTM encoder: ``LSTM(token_dim, encoder_hidden_size, bidirectional)`` then
  ``Linear(2 * ehs, 2 * ehs) -> ReLU -> Linear(2 * ehs, token_dim)``. The paper's code
  (THUDM/P-tuning) uses ``h / 2`` units per direction and ``Linear(h, h) -> ReLU -> Linear(h, h)``:
  the same network exactly when ``encoder_hidden_size = token_dim / 2`` (asserted below), a different
  one for any other size (e.g. PEFT's common ``encoder_hidden_size = token_dim``, also asserted).
- PEFT's MLP encoder has 3 Linear layers (``E -> ehs -> ehs -> E``, two ReLUs); our ``mlp`` defaults
  to the paper's 2-layer head without the LSTM; ``mlp_layers: 3`` reproduces PEFT's (asserted).
- PEFT has no identity P-Tuning encoder; ours equals PEFT's prompt tuning (asserted via prompt_tuning).
- PEFT always prepends (before [CLS] / <s>); P-Tuning places pseudo tokens anywhere, so parity uses
  templates whose pseudo tokens all come first. Our ``prompt_tuning`` prepends after the tokenizer's
  leading specials; GPT-2 and T5 have none, so there the rendered inputs are PEFT's exactly.
- PEFT has no masked-LM task type: BERT-style models are compared through
  ``PeftModelForFeatureExtraction`` (task_type FEATURE_EXTRACTION, which returns the base model's
  output, here the MLM logits) against our scorer on a hand-built batch with the pseudo tokens
  before [CLS], i.e. at the embedding level, not through our template rendering.
- PEFT sizes prompts by ``hidden_size`` unless ``token_dim`` is given: on ALBERT (E = 32 < H = 64)
  its default prompt vectors are 64-d and cannot enter the 32-d embedding; ours use E (asserted).
- For seq2seq PEFT defaults to ``num_transformer_submodules = 2`` (a second block of virtual tokens
  that prompt tuning never uses); parity sets 1. PEFT, like us, leaves the T5 decoder untouched.
"""

import copy

import pytest
import torch
from peft import PromptEncoderConfig, PromptTuningConfig, TaskType, get_peft_model
from test_ptuning import NAMES

from bench.backbones.scoring import pad_batch
from bench.lama.training import pad_id_of
from bench.methods.prompt_tuning import PromptTuning
from bench.methods.ptuning import PTuning
from bench.prompts import parse_template, render

SUBJECTS = ["Italy", "the United Kingdom"]
TASK = {"clm": TaskType.CAUSAL_LM, "seq2seq": TaskType.SEQ_2_SEQ_LM, "mlm": TaskType.FEATURE_EXTRACTION}
N = 4


def embedding_dim(backbone) -> int:
    return backbone.model.get_input_embeddings().embedding_dim


def peft_model(backbone, config):
    return get_peft_model(copy.deepcopy(backbone.model), config).eval()


def ours_and_inputs(method, backbone, text: str):
    """Our scores on rendered prompts, plus the same inputs with the pseudo tokens cut out (PEFT's input)."""
    tok = backbone.tokenizer
    template = method.adapt_template(parse_template(text))
    prompts = [render(template, {"x": s}, tok, backbone.family) for s in SUBJECTS]
    assert all(p.soft_positions == list(range(N)) for p in prompts)  # GPT-2 / T5: the very first positions
    pad = pad_id_of(tok)
    decoder = [p.decoder_input_ids for p in prompts] if prompts[0].decoder_input_ids else None
    batch = pad_batch([p.input_ids for p in prompts], [p.target_positions for p in prompts], pad, decoder,
                      soft_positions=[p.soft_positions for p in prompts])
    with torch.no_grad():
        ours = method.scorer()(batch)
    plain = pad_batch([p.input_ids[N:] for p in prompts], [[0]] * 2, pad, decoder)
    targets = [p.target_positions[0] for p in prompts]  # in the PEFT output (prompt included) for GPT-2
    return ours, plain, targets


def peft_scores(model, backbone, plain, targets) -> torch.Tensor:
    with torch.no_grad():
        if backbone.family == "seq2seq":
            logits = model(input_ids=plain.input_ids, attention_mask=plain.attention_mask,
                           decoder_input_ids=plain.decoder_input_ids).logits
            return logits[:, 1].float()
        logits = model(input_ids=plain.input_ids, attention_mask=plain.attention_mask).logits
        return logits[torch.arange(len(targets)), torch.tensor(targets)].float()


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-t5"])
def test_prompt_tuning_equals_peft_prompt_tuning(tiny_backbone, name):
    backbone = tiny_backbone(name)
    torch.manual_seed(0)
    method = PromptTuning(length=N, init="random")
    method.setup(backbone)
    ours, plain, targets = ours_and_inputs(method, backbone, "[X] is located in [Y] .")
    config = PromptTuningConfig(task_type=TASK[backbone.family], num_virtual_tokens=N,
                                token_dim=embedding_dim(backbone), num_transformer_submodules=1)
    model = peft_model(backbone, config)
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.copy_(method.encoder.embedding.weight)
    torch.testing.assert_close(ours, peft_scores(model, backbone, plain, targets), atol=1e-5, rtol=0)


def _peft_lstm(backbone, hidden):
    config = PromptEncoderConfig(task_type=TASK[backbone.family], num_virtual_tokens=N,
                                 token_dim=embedding_dim(backbone), encoder_reparameterization_type="LSTM",
                                 encoder_hidden_size=hidden, num_transformer_submodules=1)
    return peft_model(backbone, config)


def _copy_encoder(method, model) -> None:
    """Our encoder's tensors into PEFT's (lstm -> lstm_head, mlp -> mlp_head); shapes must match."""
    target = model.prompt_encoder["default"]
    ours = method.encoder.state_dict()
    theirs = {k.replace("lstm.", "lstm_head.").replace("mlp.", "mlp_head."): v for k, v in ours.items()}
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in target.state_dict().items()}
    target.load_state_dict(theirs)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-t5"])
@pytest.mark.parametrize("encoder", ["lstm", "mlp"])
def test_ptuning_with_all_pseudo_tokens_first_equals_peft_p_tuning(tiny_backbone, name, encoder):
    backbone = tiny_backbone(name)
    e = embedding_dim(backbone)
    torch.manual_seed(0)
    method = PTuning(encoder=encoder) if encoder == "lstm" else PTuning(encoder="mlp", hidden_size=16, mlp_layers=3)
    method.setup(backbone)
    ours, plain, targets = ours_and_inputs(method, backbone, f"[P:{N}] [X] is located in [Y]")
    if encoder == "lstm":  # the paper's LSTM is PEFT's with encoder_hidden_size = E / 2
        model = _peft_lstm(backbone, e // 2)
    else:  # PEFT's MLP: E -> 16 -> 16 -> E
        model = peft_model(backbone, PromptEncoderConfig(
            task_type=TASK[backbone.family], num_virtual_tokens=N, token_dim=e,
            encoder_reparameterization_type="MLP", encoder_hidden_size=16, num_transformer_submodules=1))
    _copy_encoder(method, model)
    torch.testing.assert_close(ours, peft_scores(model, backbone, plain, targets), atol=1e-5, rtol=0)


def test_where_peft_encoders_differ_from_the_paper(tiny_backbone):
    backbone = tiny_backbone("tiny-gpt2")
    method = PTuning(encoder="lstm")
    method.setup(backbone)
    method.adapt_template(parse_template(f"[P:{N}] [X] is located in [Y]"))
    with pytest.raises(AssertionError):  # PEFT with encoder_hidden_size = E: 2E-wide LSTM output and MLP
        _copy_encoder(method, _peft_lstm(backbone, embedding_dim(backbone)))
    paper_mlp = PTuning(encoder="mlp")  # our default 2-layer MLP vs PEFT's 3-layer one
    paper_mlp.setup(backbone)
    paper_mlp.adapt_template(parse_template(f"[P:{N}] [X] is located in [Y]"))
    peft_mlp = peft_model(backbone, PromptEncoderConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=N, token_dim=64, encoder_reparameterization_type="MLP",
        encoder_hidden_size=64, num_transformer_submodules=1))
    assert len(paper_mlp.encoder.mlp) == 3 and len(peft_mlp.prompt_encoder["default"].mlp_head) == 5

    albert = tiny_backbone("tiny-albert")  # PEFT's default token_dim is the hidden size, not E
    default = peft_model(albert, PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=N))
    assert default.prompt_encoder["default"].embedding.weight.shape[1] == 64 != embedding_dim(albert) == 32


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("tiny-gpt2", "tiny-t5")])
@pytest.mark.parametrize("kind", ["prompt_tuning", "ptuning_lstm"])
def test_masked_lms_match_peft_feature_extraction_with_the_prompt_before_cls(tiny_backbone, name, kind):
    backbone = tiny_backbone(name)
    tok, e = backbone.tokenizer, embedding_dim(backbone)
    torch.manual_seed(0)
    method = PromptTuning(length=N, init="random") if kind == "prompt_tuning" else PTuning(encoder="lstm")
    method.setup(backbone)
    if kind != "prompt_tuning":
        method.adapt_template(parse_template(f"[P:{N}] [X] is located in [Y] ."))  # sizes the encoder
    plain = [render(parse_template("[X] is located in [Y] ."), {"x": s}, tok, "mlm") for s in SUBJECTS]
    pad = pad_id_of(tok)
    # ours: pseudo tokens at positions 0..N-1, i.e. before [CLS], on a hand-built batch
    batch = pad_batch([[pad] * N + p.input_ids for p in plain], [[N + p.target_positions[0]] for p in plain], pad,
                      soft_positions=[list(range(N))] * 2)
    with torch.no_grad():
        ours = method.scorer()(batch)
    if kind == "prompt_tuning":
        model = peft_model(backbone, PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=N,
                                                        token_dim=e))
        with torch.no_grad():
            model.prompt_encoder["default"].embedding.weight.copy_(method.encoder.embedding.weight)
    else:
        model = _peft_lstm(backbone, e // 2)
        _copy_encoder(method, model)
    inputs = pad_batch([p.input_ids for p in plain], [p.target_positions for p in plain], pad)
    with torch.no_grad():
        logits = model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask).logits
    theirs = logits[torch.arange(2), torch.tensor([N + p.target_positions[0] for p in plain])].float()
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
