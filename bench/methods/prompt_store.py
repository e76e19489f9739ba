"""A run's selected soft prompt, kept beside its record so that later jobs (prompt ensembles) can load it.

A Prompt Tuning run (:meth:`bench.methods.prompt_tuning.PromptTuning.saved_prompt`) hands the job its
selected prompt vectors; the job writes them as ``<record stem>.prompt.safetensors`` (one float32 tensor
``prompt``, ``(num_tokens, dim)``; safetensors: no pickle, equal tensors give equal bytes) before the
record, atomically, and the record keeps ``prompt: {file, sha256, shape}``. :func:`read_prompt` refuses
a file whose checksum is not the record's. Rewrites follow :mod:`bench.predictions`: a file beside a
finished record is kept unless ``force`` (then moved to ``.bak``); one beside no finished record (a
crashed run's) is moved aside.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import torch

from bench.errors import DataError
from bench.io_utils import atomic_write_bytes, sha256_file
from bench.records import is_finished

SUFFIX = ".prompt.safetensors"
KEY = "prompt"


def prompt_path(record_path: Path) -> Path:
    record_path = Path(record_path)
    return record_path.with_name(record_path.name.removesuffix(".json") + SUFFIX)


def encode(vectors: torch.Tensor) -> bytes:
    from safetensors.torch import save

    return save({KEY: vectors.detach().to("cpu", torch.float32).contiguous()})


def write_prompt(record_path: Path, vectors: torch.Tensor, force: bool = False) -> dict:
    """Write a run's prompt beside its record (call before the record); return the record's reference."""
    path = prompt_path(record_path)
    if path.exists() and (force or not is_finished(record_path)):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path.rename(path.with_name(f"{path.name}.{stamp}.bak"))
    try:
        atomic_write_bytes(path, encode(vectors), exclusive=True)
    except FileExistsError:
        raise FileExistsError(f"{path} was written by another worker while this run went on; kept it") from None
    return {"file": path.name, "sha256": sha256_file(path), "shape": list(vectors.shape)}


def read_prompt(record_path: Path, record: Mapping) -> torch.Tensor:
    """The prompt a finished record saved, checked against the record's checksum and shape."""
    from safetensors.torch import load

    ref = record.get("prompt")
    fix = f"rerun {record.get('name', 'the run')} with force=true (Prompt Tuning runs save their prompt since issue 30)"
    if not ref:
        raise DataError("the record has no saved prompt", file=record_path, field="prompt", fix=fix)
    path = Path(record_path).with_name(ref["file"])
    if not path.is_file():
        raise DataError("the saved prompt file is missing", file=path, field="prompt.file", fix=fix)
    if sha256_file(path) != ref["sha256"]:
        raise DataError("the prompt file's sha256 is not the one its record holds (changed after the run)",
                        file=path, field="prompt.sha256", fix=fix)
    vectors = load(path.read_bytes()).get(KEY)
    if vectors is None or list(vectors.shape) != list(ref["shape"]):
        raise DataError(f"the prompt file holds no {KEY!r} tensor of shape {ref['shape']}", file=path,
                        field="prompt.shape", fix=fix)
    return vectors
