"""FewGLUE parity: PT-Fewshot's prompt encoder (THUDM/P-tuning @f4225d4, ``ContinuousPrompt`` with
``prompt_encoder_type=lstm``) beside the suite's ``PromptEncoder("lstm_full")`` on fixed weights.

``python -m bench.parity fewglue --ref /path/to/P-tuning --reference ptfewshot --parts prompt`` runs
``fewglue_prompt_ref.py`` in PT-Fewshot's environment: its own model and ``generate_default_inputs`` write the
encoder's rows into the input embeddings; the golden file (``prompt_encoder``) keeps them. The weights are a
deterministic sine pattern (:func:`weights`), so the suite rebuilds them without the golden file.
CI: ``tests/parity/test_fewglue_prompt.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from bench.parity.golden import load_golden, write_golden
from bench.parity.refenv import run_ref_script

LENGTHS = (2, 3)  # pseudo tokens per case (PT-Fewshot's pattern_id = the prompt length)
GOLDEN = "prompt_encoder"
REF_NAMES = {"embedding": "embedding", "lstm": "lstm", "mlp": "mlp"}  # suite module -> job key (driver maps them)


def encoder(length: int, dim: int):
    """The suite's few-shot encoder with the case's fixed weights (hidden = dim, PT-Fewshot's ``embed_size``)."""
    from bench.methods.prompt_encoders import PromptEncoder
    from bench.parity.superglue_models import pattern

    enc = PromptEncoder("lstm_full", num_tokens=length, dim=dim, hidden_size=dim)
    with torch.no_grad():
        for salt, (_name, param) in enumerate(sorted(enc.named_parameters())):
            param.copy_(pattern(param.shape, salt, 0.3))
    return enc.eval()


def weights(length: int, dim: int) -> dict[str, dict[str, Any]]:
    """Per module (embedding, lstm, mlp) its state dict as nested lists, for PT-Fewshot's modules."""
    out: dict[str, dict[str, Any]] = {k: {} for k in REF_NAMES}
    for name, value in encoder(length, dim).state_dict().items():
        module, rest = name.split(".", 1)
        out[module][rest] = value.tolist()
    return out


def regenerate(python: Path, ref: Path, head: str, work: Path, env: dict[str, str] | None) -> Path:
    from bench.parity.fewglue_losses import MODEL, export_model

    folder = export_model(work / "prompt-model")
    dim = int(json.loads((folder / "config.json").read_text())["embedding_size"])
    cases = [{"name": f"length{n}", "length": n, "weights": weights(n, dim)} for n in LENGTHS]
    job = {"model_dir": str(folder), "embed_size": dim, "cases": cases, "out": str(work / "prompt.json")}
    (work / "prompt-job.json").write_text(json.dumps(job))
    run_ref_script(python, Path(__file__).with_name("fewglue_prompt_ref.py"), [str(work / "prompt-job.json")], ref, env)
    result = json.loads((work / "prompt.json").read_text())
    payload = {"reference": f"THUDM/P-tuning@{head}", "model": MODEL, "embed_size": dim, "lengths": list(LENGTHS),
               "weights": "bench.parity.fewglue_prompt.weights (sine pattern, salt per sorted parameter, scale 0.3)",
               **result}
    return write_golden("fewglue", GOLDEN, payload)


def compare() -> dict[str, float]:
    """Max difference of the suite's encoder output and PT-Fewshot's, per case, relative to the output's
    largest value (single entries near 0 make a per-entry ratio meaningless)."""
    from bench.parity.fewglue_losses import scaled_diff

    gold = load_golden("fewglue", GOLDEN)
    out = {}
    for n in gold["lengths"]:
        with torch.no_grad():
            ours = encoder(n, gold["embed_size"])()
        out[f"length{n}"] = scaled_diff(ours.tolist(), gold["cases"][f"length{n}"]["output"])
    return out
