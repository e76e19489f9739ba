"""Run inside timoschick/pet's own environment (Python 3.7, transformers 3.0.2): PET's training losses with fixed
weights on a fixed batch, as JSON.

Imports only the reference checkout (on ``PYTHONPATH``) and its libraries, never ``bench``.
Usage: ``python fewglue_losses_ref.py JOB.json``. The job names a model folder (config.json, pytorch_model.bin and
the tokenizer files), the model type and per case a task, a pattern, the training file and how many of PET's
training examples form the batch. Per case the output holds PET's loss on the whole batch (its task helper's
``train_step`` or ``mlm_train_step``, model in eval mode), the mean of its losses per micro-batch of
``micro`` examples (what PET's gradient accumulation averages), the label logits where the pattern has a
verbalizer, for the ``mlm`` case the masking ``_mask_tokens`` drew (seeded) and the masked-LM loss on it, and
for a ``classifier`` case the sequence classifier's inputs (item E) and, where the job names a ``classifier_dir``
(the model with fixed pooler and classifier weights), PET's classifier logits, its ``sequence_classifier_train_step``
loss on the labels and its distillation loss (``use_logits``, T = 2) on the case's fixed ``teacher`` logits.
"""

import json
import sys

import torch
from fewglue_steps_ref import first_batch, label_logits, micro_losses, train_loss
from pet.preprocessor import MLMPreprocessor
from pet.tasks import PROCESSORS, TASK_HELPERS
from pet.wrapper import (
    MLM_WRAPPER,
    MODEL_CLASSES,
    SEQUENCE_CLASSIFIER_WRAPPER,
    TransformerModelWrapper,
    WrapperConfig,
)


def wrapper_for(job, task, pattern, max_seq_length):
    """PET's wrapper as its __init__ builds it, with the model loaded once per job and checked to be complete."""
    kind = MODEL_CLASSES[job["model_type"]]
    wrapper = TransformerModelWrapper.__new__(TransformerModelWrapper)
    wrapper.config = WrapperConfig(model_type=job["model_type"], model_name_or_path=job["model_dir"],
                                   wrapper_type=MLM_WRAPPER, task_name=task, max_seq_length=max_seq_length,
                                   label_list=PROCESSORS[task]().get_labels(), pattern_id=pattern)
    wrapper.tokenizer = kind["tokenizer"].from_pretrained(job["model_dir"])
    wrapper.model = MODEL["model"]
    wrapper.preprocessor = MLMPreprocessor(wrapper, task, pattern)
    wrapper.task_helper = TASK_HELPERS[task](wrapper) if task in TASK_HELPERS else None
    return wrapper


MODEL = {}


def load_model(job):
    kind = MODEL_CLASSES[job["model_type"]]
    model, info = kind[MLM_WRAPPER].from_pretrained(job["model_dir"], output_loading_info=True)
    # the decoder is tied to the embeddings; the pooler (absent from the suite's masked LM) feeds no MLM logit
    missing = [k for k in info["missing_keys"] if not k.endswith("decoder.weight") and ".pooler." not in k]
    if missing or info["error_msgs"]:
        raise SystemExit("checkpoint incomplete for transformers 3.0.2: missing {}, errors {}".format(
            missing, info["error_msgs"]))
    model.eval()
    MODEL["model"] = model
    return info


def run_case(job, case):
    wrapper = wrapper_for(job, case["task"], case["pattern"], case["max_seq_length"])
    guids, batch = first_batch(wrapper, PROCESSORS, case)
    out = {"guids": guids}
    with torch.no_grad():
        try:
            out["loss"] = float(train_loss(wrapper, batch))
        except RuntimeError as err:  # a fact to record (ReCoRD's train_step views a permuted batch)
            out["loss"], out["loss_error"] = None, f"{type(err).__name__}: {err}"
        parts = micro_losses(wrapper, batch, case["n"], case["micro"])
        out["micro_losses"] = parts
        out["accumulated_loss"] = sum(p / len(parts) for p in parts)  # loss / accumulation steps, summed
        logits = label_logits(wrapper, batch)  # mlm_train_step: the label words' logits
        if logits is not None:
            out["logits"] = logits
    return out


def run_mlm(job, case):
    """``_mask_tokens`` on unlabeled-style inputs (``labelled=False``) of a pattern, seeded, and the MLM loss."""
    task = case["task"]
    wrapper = wrapper_for(job, task, case["pattern"], case["max_seq_length"])
    examples = PROCESSORS[task]()._create_examples(case["file"], "train")[: case["n"]]
    dataset = wrapper._generate_dataset(examples, labelled=False)
    original = dataset.tensors["input_ids"].clone()
    attention = dataset.tensors["attention_mask"]
    mask_id = wrapper.tokenizer.mask_token_id
    seed = case["seed"]
    while True:  # the first seed from case["seed"] on whose draw picks a pattern's mask too (item G)
        torch.manual_seed(seed)
        masked, labels = wrapper._mask_tokens(original.clone())
        if ((labels != -100) & (original == mask_id)).any() or seed >= case["seed"] + 100:
            break
        seed += 1
    with torch.no_grad():
        loss = wrapper.model(input_ids=masked, attention_mask=attention, masked_lm_labels=labels)[0]
    picked = labels != -100
    specials = set(wrapper.tokenizer.all_special_ids)
    return {
        "lengths": attention.sum(-1).tolist(),
        "input_ids": masked.tolist(), "labels": labels.tolist(), "attention_mask": attention.tolist(),
        "loss": float(loss), "seed": seed,
        "picked": int(picked.sum()),
        "picked_padding": int((picked & (attention == 0)).sum()),
        "picked_pattern_mask": int((picked & (original == mask_id)).sum()),
        "picked_other_special": int(sum(1 for t, p in zip(original.view(-1).tolist(), picked.view(-1).tolist())  # noqa: B905
                                        if p and t in specials and t != mask_id and t != wrapper.tokenizer.pad_token_id)),
    }


def run_classifier(job, case):
    """PET's sequence-classifier inputs (``SequenceClassifierPreprocessor`` + the task helper's
    ``get_sequence_classifier_inputs``) for the first training examples: what its distilled model reads."""
    from pet.preprocessor import SequenceClassifierPreprocessor

    task = case["task"]
    wrapper = wrapper_for(job, task, 0, case["max_seq_length"])
    wrapper.preprocessor = SequenceClassifierPreprocessor(wrapper, task)
    examples = PROCESSORS[task]()._create_examples(case["file"], "train")[: case["n"]]
    out, features_list = [], []
    for example in examples:
        features = wrapper.preprocessor.get_input_features(example, labelled=True)
        features_list.append(features)
        n = sum(features.attention_mask)
        out.append({"guid": example.guid, "input_ids": features.input_ids[:n], "label": features.label,
                    "num_labels": len(wrapper.config.label_list)})
    result = {"examples": out}
    if job.get("classifier_dir"):
        result.update(classifier_losses(job, wrapper, features_list, case))
    return result


def classifier_losses(job, wrapper, features_list, case):
    """PET's sequence classifier (fixed head weights) on the features' batch: logits, the labelled loss and the
    distillation loss, as its ``train`` takes them (``sequence_classifier_train_step``), model in eval mode."""
    kind = MODEL_CLASSES[job["model_type"]]
    config = kind["config"].from_pretrained(job["classifier_dir"], num_labels=len(wrapper.config.label_list),
                                            finetuning_task=case["task"])
    model, info = kind[SEQUENCE_CLASSIFIER_WRAPPER].from_pretrained(job["classifier_dir"], config=config,
                                                                    output_loading_info=True)
    # RoBERTa's classification head reads the first hidden state itself: its model's pooler is never used
    missing = [k for k in info["missing_keys"] if not (job["model_type"] == "roberta" and ".pooler." in k)]
    if missing or info["error_msgs"]:
        raise SystemExit("classifier checkpoint incomplete: missing {}, errors {}".format(info["missing_keys"],
                                                                                          info["error_msgs"]))
    model.eval()
    wrapper.model = model
    wrapper.config.wrapper_type = SEQUENCE_CLASSIFIER_WRAPPER
    batch = {
        "input_ids": torch.tensor([f.input_ids for f in features_list], dtype=torch.long),
        "attention_mask": torch.tensor([f.attention_mask for f in features_list], dtype=torch.long),
        "token_type_ids": torch.tensor([f.token_type_ids for f in features_list], dtype=torch.long),
        "labels": torch.tensor([f.label for f in features_list], dtype=torch.long),
    }
    with torch.no_grad():
        logits = model(**wrapper.generate_default_inputs(batch))[0]
        loss = wrapper.sequence_classifier_train_step(batch)
        batch["logits"] = torch.tensor(case["teacher"], dtype=torch.float)
        distill = wrapper.sequence_classifier_train_step(batch, use_logits=True, temperature=2)
    return {"classifier_logits": logits.tolist(), "classifier_loss": float(loss), "distillation_loss": float(distill),
            "classifier_unexpected_keys": sorted(info["unexpected_keys"])}


def main():
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    info = load_model(job)
    result = {"loading": {k: sorted(v) for k, v in info.items() if k != "error_msgs"}, "cases": {}}
    for case in job["cases"]:
        run = run_classifier if case.get("classifier") else run_mlm if case.get("mlm") else run_case
        try:
            result["cases"][case["name"]] = run(job, case)
        except AssertionError as err:  # a pattern PET refuses on this model (a label word of several tokens): a fact
            result["cases"][case["name"]] = {"error": f"{type(err).__name__}: {err}"}
        print("[fewglue_losses_ref] {} done".format(case["name"]), file=sys.stderr)
    with open(job["out"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
