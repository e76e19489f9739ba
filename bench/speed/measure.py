"""Timing, peak memory and the machine's matmul peak, on CPU and CUDA.

- time: ``perf_counter`` around the work; on CUDA the interval between two CUDA events recorded
  on the stream (the work is queued asynchronously; only the end is waited for).
- memory: CUDA, ``max_memory_allocated`` after a reset (live tensors, the allocator's view). CPU: a
  thread samples the process's resident set every millisecond and reports the peak above the level
  at the start; glibc is told to return every block of 64 KiB or more to the system at once
  (``mallopt(M_MMAP_THRESHOLD)``), so that the resident set follows the live tensors, and each measurement starts
  with ``malloc_trim(0)``: memory freed before it (still resident in glibc's free lists, which a new allocation
  would reuse without growing the resident set) goes back to the system first.
- peak: the best of a few large square matmuls (fp32, bf16) on the same device, in the same run.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_M_MMAP_THRESHOLD = -3


def release_freed_memory_at_once() -> bool:
    """Make glibc map (and unmap on free) every allocation of 64 KiB or more; False where not glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 64 * 1024))
    except OSError:
        return False


def trim_freed_memory() -> bool:
    """glibc's ``malloc_trim(0)``: free pages in every arena go back to the system now; False where not glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except OSError:
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[object, float]:
    """``fn()`` and its seconds (CUDA: between events around it, after the queue drained)."""
    if device.type == "cuda":
        sync(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end) / 1000.0
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def best_of(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[object, float]:
    """The output of the last call and the shortest time over ``repeats`` calls (a shared machine
    only ever slows a run down, so the minimum is the least disturbed one)."""
    out, best = None, float("inf")
    for _ in range(max(1, repeats)):
        out, seconds = timed(fn, device)
        best = min(best, seconds)
    return out, best


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.bytes``: the peak above the start."""

    def __init__(self, device: torch.device, interval: float = 0.001) -> None:
        self.device, self.interval, self.bytes = device, interval, 0
        self.samples = 0  # resident-set readings taken so far (CPU)
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            trim_freed_memory()  # else a new tensor may reuse freed, still-resident pages: no growth to see
            self._base = self._peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            self.samples += 1
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.bytes = max(self._peak, _rss_bytes()) - self._base


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int | None = None, repeats: int = 5) -> float:
    """FLOP/s of the fastest of ``repeats`` ``size x size`` matmuls (after one warm-up)."""
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.matmul(a, b)
    _, seconds = best_of(lambda: torch.matmul(a, b), device, repeats)
    return 2 * size**3 / seconds


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine()


def machine_line(device: torch.device) -> str:
    """What the figures were measured on: device, CPU, threads, torch."""
    import platform

    cpu = f"{cpu_name()}, {os.cpu_count()} cores visible, torch on {torch.get_num_threads()} threads"
    where = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}); host {cpu}" \
        if device.type == "cuda" else cpu
    return f"{where}; torch {torch.__version__}; python {platform.python_version()}"
