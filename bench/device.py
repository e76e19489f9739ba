"""Pick and check the device; the dtype policy lives in :mod:`bench.precision`."""

from __future__ import annotations

import torch

from bench.errors import ConfigError

DEVICE_HELP = "device=auto picks cuda > mps > cpu; device=cpu always works"


def pick_device(requested: str | None = None) -> torch.device:
    if requested and requested != "auto":
        try:
            return torch.device(requested)
        except (RuntimeError, ValueError):
            raise ConfigError(f"device={requested!r} is not a torch device ({DEVICE_HELP})") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: torch.device) -> None:
    """ConfigError when the device is not usable on this machine (before any weights load)."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", built without CUDA")
            raise ConfigError(f"device={device} but CUDA is not available here ({build}); {DEVICE_HELP}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={device} but this machine has {torch.cuda.device_count()} CUDA device(s) "
                              f"(indices 0-{torch.cuda.device_count() - 1}); {DEVICE_HELP}")
    elif device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ConfigError(f"device=mps but the MPS backend is not available here; {DEVICE_HELP}")
    elif device.type != "cpu":
        raise ConfigError(f"device={device}: the suite runs on cpu, cuda or mps; {DEVICE_HELP}")


def pick_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """The compute dtype: bf16 on GPUs that support it, fp32 elsewhere; an explicit request wins."""
    from bench.precision import compute_dtype

    return compute_dtype(device, requested)
