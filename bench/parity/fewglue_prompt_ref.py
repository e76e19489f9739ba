"""Run inside THUDM/P-tuning PT-Fewshot's environment (Python 3.7, transformers 3.0.2): its prompt encoder's
output with fixed weights, as JSON.

Imports only the reference (``PT-Fewshot/`` on ``PYTHONPATH``) and its libraries, never ``bench``.
Usage: ``python fewglue_prompt_ref.py JOB.json``. The job names a model folder, the embedding size, per case the
prompt length and the encoder's weights (state-dict name -> nested lists). PT-Fewshot's own ``ContinuousPrompt``
is built, the weights loaded, and its wrapper's ``generate_default_inputs`` run on one input whose
``block_flag`` marks the pseudo tokens: the rows it writes there are the encoder's output.
Runtime shim (the only one): ``generate_default_inputs`` hard-codes ``.cuda()``; on a machine without a GPU
``Tensor.cuda`` returns the tensor itself.
"""

import json
import sys

import torch

torch.Tensor.cuda = lambda self, *args, **kwargs: self  # no GPU here: the reference's .cuda() is the identity

import pet.wrapper as wrp  # noqa: E402  (after the shim; PT-Fewshot's preprocessor <-> wrapper import cycle)
from pet.config import WrapperConfig  # noqa: E402
from transformers import AlbertTokenizer  # noqa: E402


def run_case(job, case):
    config = WrapperConfig(model_type="albert", model_name_or_path=job["model_dir"], task_name="rte",
                           max_seq_length=32, label_list=["entailment", "not_entailment"],
                           pattern_id=case["length"], embed_size=job["embed_size"], prompt_encoder_type="lstm")
    tokenizer = AlbertTokenizer.from_pretrained(job["model_dir"])
    model = wrp.ContinuousPrompt(config, tokenizer)
    model.eval()
    for module, state in (("prompt_embeddings", "embedding"), ("lstm_head", "lstm"), ("mlp_head", "mlp")):
        weights = {k: torch.tensor(v) for k, v in case["weights"][state].items()}
        getattr(model, module).load_state_dict(weights)
    wrapper = wrp.TransformerModelWrapper.__new__(wrp.TransformerModelWrapper)
    wrapper.config, wrapper.tokenizer, wrapper.model = config, tokenizer, model
    n = case["length"] + 4
    flags = [0, 0] + [1] * case["length"] + [0, 0]
    batch = {"input_ids": torch.tensor([[tokenizer.cls_token_id] + [10] * (n - 2) + [tokenizer.sep_token_id]]),
             "block_flag": torch.tensor([flags]), "attention_mask": torch.ones(1, n, dtype=torch.long),
             "token_type_ids": torch.zeros(1, n, dtype=torch.long)}
    with torch.no_grad():
        embeds = wrapper.generate_default_inputs(batch)["inputs_embeds"]
    return {"output": embeds[0, 2:2 + case["length"]].tolist()}


def main():
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    result = {"cases": {case["name"]: run_case(job, case) for case in job["cases"]}}
    with open(job["out"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
