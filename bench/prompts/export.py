"""Export the exact prompts a classification run feeds its model, so another harness can score them.

    python -m bench.prompts.export task=cb model=tiny-gpt2 method=manual template=gpt3_cb split=val [out=FILE]
    python -m bench.prompts.export experiment=fewglue_pet_cb model=tiny-albert template.rank=0 split=val

The arguments are the run's Hydra overrides (as for ``bench.run``) plus ``split=`` and an optional
``out=``. Per example of the split, one JSONL row (gzip'd when ``out`` ends in ``.gz``; default
``<results>/prompts/<run name>.<split>.jsonl.gz``): ``id``, ``split``, ``gold`` (label index),
``text`` (the input ids decoded), ``input_ids``, ``token_type_ids``, ``decoder_input_ids`` (seq2seq),
``target_position`` (masked LMs: the mask; left-to-right LMs: the last input token, whose
next-token distribution is scored), ``labels`` and, per label, its ``label_words`` and
``label_token_ids``. The run scores a label by the mean logit of its words' tokens at that position.
Covered: label-word prompts (the task's ``words`` mode); choice tasks scored by multi-token
log-likelihoods (COPA, ReCoRD, WSC's spans) and classifier heads are refused with that reason.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError, ConfigError
from bench.io_utils import atomic_write_bytes


def compose_run(overrides: Sequence[str]) -> dict:
    """The resolved config ``bench.run`` would compose from ``overrides``."""
    from omegaconf import OmegaConf

    from bench.inputs import compose_config, hydra_compose

    with hydra_compose():
        return OmegaConf.to_container(compose_config(overrides), resolve=True)


def export_rows(resolved: dict, split: str, backbone=None) -> list[dict]:
    """One row per example of ``split``: what the model reads and where it is scored (words mode only)."""
    from hydra.utils import instantiate

    from bench.backbones.loading import load_backbone
    from bench.device import pick_device
    from bench.precision import precision_for_method

    method = instantiate(resolved["method"]["component"])
    if backbone is None:
        device = pick_device(str(resolved.get("device", "auto")))
        backbone = load_backbone(resolved["model"], device=device, precision=precision_for_method(device, resolved, method),
                                 models_dir=resolved["paths"]["models_dir"])
    method.setup(backbone)
    from hydra.utils import get_method

    runner = get_method(str(resolved["task"]["runner"]))
    task_class = getattr(runner, "task_class", None)
    if task_class is None:
        from bench.superglue.task import ClassificationTask as task_class
    task = task_class(resolved, backbone, method)
    if task.mode != "words":
        raise ConfigError(f"prompt export covers label-word prompts; {task.task} with template "
                          f"{resolved['template'].get('name')!r} is scored in mode {task.mode!r} (multi-token "
                          "choices, generated spans or a classifier head), which it does not export")
    if int(getattr(task, "num_sample", 1)) > 1:
        raise ConfigError("this run averages several demonstration draws per example (num_sample > 1); "
                          "one exported prompt would not be what it scores")
    table = task.word_table().tolist()
    words = [list(task.verbalizer.label_words[label]) for label in task.labels]
    rows = []
    for item in task.items(split):
        prompt = item.rendered
        rows.append({
            "id": item.example.uid, "split": split, "gold": item.example.label,
            "text": task.tok.decode(prompt.input_ids), "input_ids": list(prompt.input_ids),
            "token_type_ids": None if prompt.token_type_ids is None else list(prompt.token_type_ids),
            "decoder_input_ids": None if prompt.decoder_input_ids is None else list(prompt.decoder_input_ids),
            "target_position": int(prompt.target_positions[0]), "family": task.family,
            "labels": list(task.labels), "label_words": words,
            "label_token_ids": [[t for t in ids if t >= 0] for ids in table],
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    import json

    from bench.identity import spec_from_config
    from bench.predictions import encode

    args = list(sys.argv[1:] if argv is None else argv)
    split = next((a.split("=", 1)[1] for a in args if a.startswith("split=")), None)
    out = next((a.split("=", 1)[1] for a in args if a.startswith("out=")), None)
    overrides = [a for a in args if not a.startswith(("split=", "out="))]
    if not split:
        print("usage: python -m bench.prompts.export <run overrides> split=<split> [out=FILE]", file=sys.stderr)
        return 2
    try:
        resolved = compose_run(overrides)
        rows = export_rows(resolved, split)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = Path(out) if out else (Path(resolved["paths"]["results_dir"]) / "prompts"
                                  / f"{spec_from_config(resolved).name}.{split}.jsonl.gz")
    payload = encode(rows) if path.name.endswith(".gz") else "".join(json.dumps(r) + "\n" for r in rows).encode()
    atomic_write_bytes(path, payload)
    print(f"{len(rows)} prompts of split {split} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
