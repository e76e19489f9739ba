"""Run inside THUDM/P-tuning PT-Fewshot's environment (Python 3.7, transformers 3.0.2): its training losses with
fixed weights on a fixed batch, per task x template, as JSON.

Imports only the reference (``PT-Fewshot/`` on ``PYTHONPATH``) and its libraries, never ``bench``.
Usage: ``python fewglue_ptlosses_ref.py JOB.json``. The job names a model folder (config.json, pytorch_model.bin,
the tokenizer files), the model type, PT-Fewshot's ``embed_size`` and per case a task, a pattern (= the number of
pseudo tokens), the prompt encoder's weights, the training file and the batch size. Per case PT-Fewshot's own
``ContinuousPrompt`` is built (backbone from the folder, its LSTM encoder given the weights), eval mode, and the
loss its ``train`` takes (task helper's ``train_step``, else ``mlm_train_step``) computed on the first ``n``
training examples and per micro-batch of ``micro``, with the label logits of verbalizer templates and the input
embedding rows its ``generate_default_inputs`` writes at the first example's pseudo-token positions.
Runtime shim (the only one): the reference hard-codes ``.cuda()``; without a GPU ``Tensor.cuda`` and
``Module.cuda`` return their object.
"""

import json
import sys

import torch

torch.Tensor.cuda = lambda self, *args, **kwargs: self  # no GPU here: the reference's .cuda() is the identity
torch.nn.Module.cuda = lambda self, *args, **kwargs: self

import pet.wrapper as wrp  # noqa: E402  (after the shim; PT-Fewshot's preprocessor <-> wrapper import cycle)
from data_utils.task_processors import PROCESSORS, TASK_HELPERS  # noqa: E402
from fewglue_steps_ref import first_batch, label_logits, micro_losses, train_loss  # noqa: E402
from pet.config import WrapperConfig  # noqa: E402

MODULES = (("prompt_embeddings", "embedding"), ("lstm_head", "lstm"), ("mlp_head", "mlp"))


def wrapper_for(job, case):
    """PT-Fewshot's TransformerModelWrapper as its __init__ builds it, with the case's encoder weights."""
    task = case["task"]
    config = WrapperConfig(model_type=job["model_type"], model_name_or_path=job["model_dir"], task_name=task,
                           max_seq_length=case["max_seq_length"], label_list=PROCESSORS[task]().get_labels(),
                           pattern_id=case["pattern"], embed_size=job["embed_size"], prompt_encoder_type="lstm")
    wrapper = wrp.TransformerModelWrapper.__new__(wrp.TransformerModelWrapper)
    wrapper.config = config
    wrapper.tokenizer = wrp.MODEL_CLASSES[job["model_type"]]["tokenizer"].from_pretrained(job["model_dir"])
    model = wrp.ContinuousPrompt(config, wrapper.tokenizer)
    for module, key in MODULES:
        getattr(model, module).load_state_dict({k: torch.tensor(v) for k, v in case["weights"][key].items()})
    model.eval()
    wrapper.model = model
    wrapper.preprocessor = wrp.PREPROCESSORS[wrp.MLM_WRAPPER](wrapper, task, case["pattern"])
    wrapper.task_helper = TASK_HELPERS[task](wrapper) if task in TASK_HELPERS else None
    return wrapper


def run_case(job, case):
    wrapper = wrapper_for(job, case)
    guids, batch = first_batch(wrapper, PROCESSORS, case)
    out = {"guids": guids}
    with torch.no_grad():
        out["loss"] = float(train_loss(wrapper, batch))
        out["micro_losses"] = micro_losses(wrapper, batch, case["n"], case["micro"])
        first = {k: t[:1] for k, t in batch.items()}  # the rows generate_default_inputs writes, in block order
        positions = (first["block_flag"][0] == 1).nonzero().view(-1)
        out["prompt_positions"] = positions.tolist()
        out["prompt_rows"] = wrapper.generate_default_inputs(first)["inputs_embeds"][0, positions].tolist()
        logits = label_logits(wrapper, batch)
        if logits is not None:
            out["logits"] = logits
    return out


def main():
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    result = {"cases": {}}
    for case in job["cases"]:
        try:
            result["cases"][case["name"]] = run_case(job, case)
        except (AssertionError, RuntimeError) as err:  # a template the reference cannot run here: a fact to record
            result["cases"][case["name"]] = {"error": f"{type(err).__name__}: {err}"}
        print("[fewglue_ptlosses_ref] {} done".format(case["name"]), file=sys.stderr)
    with open(job["out"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
