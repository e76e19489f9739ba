"""One GPU per worker process: with several GPUs and ``device=auto``, each process of a local worker pool
takes the first GPU no other process holds (a file lock held for the process's life), so ``n_jobs`` workers
on ``n_jobs`` GPUs never share one. Hydra's joblib launcher has no notion of devices; this fills that gap."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

_HELD: dict[str, tuple[int, object]] = {}  # lock folder -> (gpu index, open lock file) for this process


def lock_dir() -> Path:
    return Path(os.environ.get("BENCH_GPU_LOCKS") or Path(tempfile.gettempdir()) / f"bench-gpu-locks-{os.getuid()}")


def claim_gpu(n_gpus: int, folder: Path | None = None) -> int:
    """Index of the GPU this process uses: the one it holds already, else the first free one (else 0..n by pid)."""
    folder = Path(folder or lock_dir())
    key = str(folder)
    if key in _HELD:
        return _HELD[key][0]
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n_gpus):
        handle = (folder / f"gpu{index}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _HELD[key] = (index, handle)
        return index
    return os.getpid() % n_gpus  # more workers than GPUs: spread the rest


def pick_job_device(requested: str | None) -> str | None:
    """``auto`` with several CUDA GPUs -> ``cuda:<claimed index>``; anything else unchanged."""
    if requested not in (None, "auto"):
        return requested
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{claim_gpu(torch.cuda.device_count())}"
    return requested
