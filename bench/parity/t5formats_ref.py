"""Runs inside T5's own environment (TensorFlow, seqio, tfds-nightly; ``bench.parity.t5formats.SPEC``).

Never imports ``bench``. For each SuperGLUE task it feeds the suite's picked rows (the official
SuperGLUE JSONL, written by ``bench/parity/t5formats.py``) through the two steps T5's SuperGLUE tasks
run, both executed here, not rebuilt:

1. tensorflow-datasets' ``super_glue/<config>:1.0.2`` example generator (``_generate_examples`` of the
   builder T5's ``TfdsDataSource`` reads: MultiRC flattened per answer, ReCoRD's sorted entity and
   answer sets, WSC's ``wsc.fixed`` span repairs, COPA's label names), encoded by the builder's features;
2. T5's text preprocessor for the task (``t5.data.glue_utils.get_glue_text_preprocessor``: ``glue`` with
   the task's feature order and label names, or ``record``), or for WSC ``t5.data.preprocessors.wsc_simple``
   as T5's ``super_glue_wsc_v102_simple_{train,eval}`` tasks call it (train: correct referents only).

It writes, per task, split and picked row (its 0-based position in the picked file), the ``inputs`` and
``targets`` strings T5 produced (several for a MultiRC passage or a ReCoRD query with several answers),
or the error T5's code raised for that row. Nothing is patched: the checkout's ``t5`` package is imported
as it is (``PYTHONPATH`` = the checkout); tfds is asked for nothing but its builder class and features.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
import tensorflow_datasets.text.glue  # noqa: F401  (tfds-nightly registers its builders lazily)
import tensorflow_datasets.text.super_glue  # noqa: F401
from t5.data import glue_utils, preprocessors

CONFIGS = {"boolq": "boolq", "cb": "cb", "copa": "copa", "multirc": "multirc", "record": "record", "rte": "rte",
           "wic": "wic", "wsc": "wsc.fixed"}
GLUE = {"rte_glue": "glue/rte:1.0.0"}  # T5's glue_rte_v002 (tasks.py: glue/<name>:1.0.0)
SPLITS = {"train": tfds.Split.TRAIN, "val": tfds.Split.VALIDATION, "dev32": tfds.Split.VALIDATION}


def _text(value) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "tolist"):
        return _text(value.tolist())
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


def _dataset(builder, examples: list[dict]) -> tf.data.Dataset:
    """tfds examples as the dataset T5's preprocessors map over (encoded, then decoded by the builder's features)."""
    features = builder.info.features
    encoded = [features.encode_example(ex) for ex in examples]
    spec = features.get_serialized_info()

    def as_tensors(value):  # tfds encodes text as object arrays (a Sequence as a list of them): from_generator
        if isinstance(value, dict):  # takes neither
            return {k: as_tensors(v) for k, v in value.items()}
        if isinstance(value, list):
            return np.array([as_tensors(v) for v in value], dtype=np.bytes_) if value else np.zeros((0,), np.bytes_)
        if isinstance(value, np.ndarray) and value.dtype == object:
            item = value.item()
            return item.encode("utf-8") if isinstance(item, str) else bytes(item)
        return value

    def gen():
        for ex in encoded:
            yield as_tensors(ex)

    signature = tf.nest.map_structure(lambda s: tf.TensorSpec(shape=s.shape, dtype=s.dtype), spec)
    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    return ds.map(features.decode_example)


TASKLESS = None  # google-research/prompt-tuning's remove_first_text_token, when --prompt-tuning is given


def _t5(task: str, builder, examples: list[dict], train_filter: bool = False) -> list[dict]:
    """T5's text preprocessor for the task over ``examples`` (in order; tf.data keeps it); with prompt-tuning's
    checkout also its ``taskless_*`` tasks' next step (the first word, the task name, removed) as
    ``taskless_inputs``."""
    ds = _dataset(builder, examples)
    if task == "wsc":
        ds = preprocessors.wsc_simple(ds, correct_referent_only=train_filter)
    else:
        ds = glue_utils.get_glue_text_preprocessor(builder.builder_config)(ds)
    out = [_text(x) for x in tfds.as_numpy(ds)]
    if TASKLESS is not None:
        taskless = [_text(x) for x in tfds.as_numpy(TASKLESS(ds))]
        for x, y in zip(out, taskless, strict=True):
            x["taskless_inputs"] = y["inputs"]
    return out


def _rows(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def _generate(builder, line: str, split: str) -> list[tuple[str, dict]]:
    """tfds' own example generator on one row (it reads a file). GLUE's RTE reads GLUE's TSV (index, sentence1,
    sentence2, label): the SuperGLUE row's premise and hypothesis are written there as GLUE lays RTE out."""
    with tempfile.TemporaryDirectory() as tmp:
        one = f"{tmp}/row.jsonl"
        with open(one, "w", encoding="utf-8") as handle:
            if builder.name == "glue":
                row = json.loads(line)
                handle.write("index\tsentence1\tsentence2\tlabel\n")
                handle.write(f"{row['idx']}\t{row['premise']}\t{row['hypothesis']}\t{row['label']}\n")
            else:
                handle.write(line)
        return [(str(k), ex) for k, ex in builder._generate_examples(one, SPLITS[split.split("_")[-1]])]


def run_split(task: str, builder, path: str, split: str) -> list[dict]:
    """Per picked row: the T5 examples of its tfds examples (or the error T5's code raised on that row)."""
    generated = [_generate(builder, line, split) for line in _rows(path)]
    flat = [ex for row in generated for _, ex in row]
    try:
        outputs = [_t5(task, builder, flat)]
    except tf.errors.OpError:  # some row fails T5's own checks: run row by row to name it
        outputs = None
    kept = None
    if task == "wsc" and split.endswith("train"):  # T5's train task keeps the correct referents only
        kept = {x["idx"] for x in _t5(task, builder, flat, train_filter=True)}
    out, position = [], 0
    for number, row in enumerate(generated):
        entry: dict = {"row": number, "examples": []}
        try:
            for key, example in row:
                if outputs is not None:
                    got = _outputs_of(task, outputs[0], example, position)
                else:
                    got = _t5(task, builder, [example])
                position += 1
                keep = ("inputs", "targets", "taskless_inputs")
                item = {"tfds_key": key, "t5": [{k: x[k] for k in keep if k in x} for x in got]}
                if kept is not None:
                    item["in_train_task"] = example["idx"] in kept
                entry["examples"].append(item)
        except tf.errors.OpError as err:
            entry["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
        out.append(entry)
    return out


def _outputs_of(task: str, outputs: list[dict], example: dict, position: int) -> list[dict]:
    """The T5 outputs of the ``position``-th tfds example: one each, ReCoRD one per answer (at least one)."""
    if task != "record":
        return [outputs[position]]
    key = (example["idx"]["passage"], example["idx"]["query"])
    return [x for x in outputs if (x["idx/passage"], x["idx/query"]) == key]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prompt-tuning", help="google-research/prompt-tuning checkout (its taskless_* variants)")
    args = parser.parse_args()
    if args.prompt_tuning:
        global TASKLESS
        sys.path.insert(0, args.prompt_tuning)
        from prompt_tuning.data import preprocessors as pt_preprocessors

        TASKLESS = pt_preprocessors.remove_first_text_token
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    tf.config.set_visible_devices([], "GPU")
    result: dict = {"versions": {"tensorflow": tf.__version__, "tensorflow_datasets": tfds.__version__}, "tasks": {}}
    import seqio

    result["versions"]["seqio"] = seqio.__version__
    with tempfile.TemporaryDirectory() as data_dir:
        for task, splits in spec["tasks"].items():
            name = GLUE.get(task) or f"super_glue/{CONFIGS[task]}:1.0.2"
            builder = tfds.builder(name, data_dir=data_dir)
            result["tasks"][task] = {"label_classes": _label_classes(builder), "splits": {}}
            for split, path in splits.items():
                print(f"[t5formats_ref] {task} {split}", file=sys.stderr, flush=True)
                result["tasks"][task]["splits"][split] = run_split(task, builder, path, split)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


def _label_classes(builder) -> list[str] | None:
    names = builder.builder_config.label_classes  # what T5's glue_utils hands preprocessors.glue
    return list(names) if names else None


if __name__ == "__main__":
    sys.exit(main())
