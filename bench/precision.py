"""Numeric precision of a run, as mixed-precision training is usually done.

- Every trained parameter (a tuned backbone, prompt encoders, heads) is a float32 *master
  weight*: AdamW updates of ~1e-5 relative size survive, which they do not in bf16 storage.
- The forward pass runs under ``torch.autocast`` in the compute dtype (``dtype``: bf16 where the
  GPU has it, fp16 on request, fp32 = no autocast); the backward follows the forward's casts.
- A frozen backbone may be *stored* in the compute dtype (``frozen_dtype: auto``), which halves
  its memory and changes nothing that is trained; a tuned backbone is always stored in float32.
- fp16 training scales the loss (``torch.amp.GradScaler``) so small gradients do not flush to zero.

The record's ``precision`` block is :meth:`Precision.as_record`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from bench.errors import ConfigError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}
DTYPE_CHOICES = ("auto", "fp32", "bf16", "fp16")
FROZEN_CHOICES = ("auto", "fp32", "bf16", "fp16")


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


def parse_dtype(value: str | torch.dtype, key: str = "dtype") -> torch.dtype:
    if isinstance(value, torch.dtype):
        return value
    if str(value) not in DTYPES:
        raise ConfigError(f"{key}={value!r} is not a precision; use one of {', '.join(DTYPE_CHOICES)}")
    return DTYPES[str(value)]


def compute_dtype(device: torch.device, requested: str | torch.dtype | None = "auto") -> torch.dtype:
    """``auto``: bf16 on CUDA GPUs that support it, fp32 elsewhere; an explicit request is checked."""
    if requested in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    dtype = parse_dtype(requested)  # type: ignore[arg-type]
    if dtype == torch.float16 and device.type == "cpu":
        raise ConfigError("dtype=fp16 is for GPUs (on a CPU it is slower than fp32 and needs loss scaling for "
                          "nothing); on CPU use dtype=bf16 or dtype=fp32")
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"dtype=bf16: this GPU ({torch.cuda.get_device_name(device)}) has no bf16 support; "
                          "use dtype=fp16 (with loss scaling) or dtype=fp32")
    return dtype


@dataclass(frozen=True)
class Precision:
    """How one run stores and computes: ``storage`` is the backbone's weights dtype."""

    device_type: str
    compute: torch.dtype  # autocast dtype of the forward pass (fp32: no autocast)
    storage: torch.dtype  # backbone weights as loaded
    tunes_backbone: bool
    trains: bool
    master: torch.dtype = torch.float32  # every trained parameter

    @property
    def autocast_enabled(self) -> bool:
        return self.compute != torch.float32

    @property
    def grad_scaler(self) -> bool:
        return self.trains and self.compute == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's context: ``torch.autocast`` in the compute dtype, or nothing for fp32."""
        if not self.autocast_enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.compute)

    def make_scaler(self) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(self.device_type) if self.grad_scaler else None

    def as_record(self) -> dict:
        return {"compute": dtype_name(self.compute), "autocast": self.autocast_enabled,
                "backbone_storage": dtype_name(self.storage), "trained_parameters": dtype_name(self.master),
                "grad_scaler": self.grad_scaler, "tunes_backbone": self.tunes_backbone, "device": self.device_type}


FP32 = Precision("cpu", torch.float32, torch.float32, tunes_backbone=False, trains=False)


def resolve_precision(device: torch.device, dtype: str | torch.dtype | None = "auto",
                      frozen_dtype: str | torch.dtype | None = "auto", *, tunes_backbone: bool = False,
                      trains: bool = False) -> Precision:
    """The run's precision from the device, ``dtype`` (compute), ``frozen_dtype`` and the method."""
    compute = compute_dtype(device, dtype)
    if tunes_backbone:
        storage = torch.float32  # master weights: a tuned backbone is never stored in half precision
    elif frozen_dtype in (None, "auto"):
        storage = compute
    else:
        storage = parse_dtype(frozen_dtype, "frozen_dtype")  # type: ignore[arg-type]
        if storage != torch.float32 and storage != compute:
            raise ConfigError(f"frozen_dtype={dtype_name(storage)} with dtype={dtype_name(compute)}: a frozen "
                              "backbone is stored in fp32 or in the compute dtype; set frozen_dtype=auto or fp32")
    return Precision(device.type, compute, storage, tunes_backbone=bool(tunes_backbone), trains=bool(trains))


def precision_for_method(device: torch.device, cfg, method) -> Precision:
    """From a composed config (``dtype``, ``frozen_dtype``) and an instantiated method."""
    return resolve_precision(device, cfg.get("dtype", "auto"), cfg.get("frozen_dtype", "auto"),
                             tunes_backbone=method.tunes_backbone,
                             trains=method.trains)


def of(backbone) -> Precision:
    """The precision a backbone was loaded with (fp32, no autocast, for backbones built by hand)."""
    found = getattr(backbone, "precision", None)
    if found is not None:
        return found
    dtype = getattr(backbone, "dtype", torch.float32)
    device = getattr(backbone, "device", torch.device("cpu"))
    return Precision(torch.device(device).type, dtype, dtype, tunes_backbone=False, trains=False)


@contextlib.contextmanager
def autocast_for(backbone) -> Iterator[None]:
    """Run a block (evaluation, scoring) in the backbone's compute precision."""
    with of(backbone).autocast():
        yield


def check_master_weights(params) -> None:
    """Refuse to train parameters that are not float32 (their small updates would round away)."""
    low = [(tuple(p.shape), dtype_name(p.dtype)) for p in params if p.dtype != torch.float32]
    if low:
        raise ConfigError(f"{len(low)} trainable parameters are not float32 (first: shape {low[0][0]}, "
                          f"{low[0][1]}); trained weights must be fp32 master weights: load the backbone with "
                          "bench.precision.resolve_precision(..., tunes_backbone=True) (the run does this)")
