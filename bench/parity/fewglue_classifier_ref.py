"""Run inside timoschick/pet's own environment (Python 3.7, transformers 3.0.2): the distilled classifier's inputs.

Imports only the reference checkout (on ``PYTHONPATH``), its libraries and the sibling ``fewglue_ref.py`` (its
tokenizer loader), never ``bench``. Usage: ``python fewglue_classifier_ref.py JOB.json``. The job names per model the
model type and tokenizer files, per task ``max_seq_length`` and per split a JSONL file and PET's set_type. Per
example the output holds what PET's ``SequenceClassifierPreprocessor`` (with the task helper's
``get_sequence_classifier_inputs``) gives: the input ids up to the attention length, the token_type_ids its wrapper
hands the model (``generate_default_inputs``: bert and xlnet only; else null), the attention length and the label.
"""

import json
import sys
from types import SimpleNamespace

from fewglue_ref import load_tokenizer


def encode(tokenizer, model_type, task, max_seq_length, path, set_type):
    import pet.wrapper  # noqa: F401  the preprocessor <-> wrapper import order PET's cli.py uses
    from pet.preprocessor import SequenceClassifierPreprocessor
    from pet.tasks import PROCESSORS, TASK_HELPERS

    config = SimpleNamespace(task_name=task, wrapper_type="sequence_classifier", max_seq_length=max_seq_length,
                             model_type=model_type, label_list=PROCESSORS[task]().get_labels())
    wrapper = SimpleNamespace(tokenizer=tokenizer, config=config)
    wrapper.task_helper = TASK_HELPERS[task](wrapper) if task in TASK_HELPERS else None
    preprocessor = SequenceClassifierPreprocessor(wrapper, task)
    out = []
    for example in PROCESSORS[task]()._create_examples(path, set_type):
        features = preprocessor.get_input_features(example, labelled=True)
        n = sum(features.attention_mask)
        out.append({"guid": example.guid, "input_ids": features.input_ids[:n],
                    "token_type_ids": features.token_type_ids[:n] if model_type in ("bert", "xlnet") else None,
                    "attention_len": n, "label": features.label})
    return out


def main():
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    result = {}
    for model, spec in job["models"].items():
        tokenizer = load_tokenizer(spec["model_type"], spec["tokenizer"])
        result[model] = {task: {split: encode(tokenizer, spec["model_type"], task, cfg["max_seq_length"], *where)
                                for split, where in cfg["splits"].items()}
                         for task, cfg in job["tasks"].items()}
    with open(job["out"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
