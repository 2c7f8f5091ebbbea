"""Timing and memory helpers shared by the benchmark scripts (imported as a sibling module)."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import torch


def sync() -> None:
    """Wait for queued CUDA work (no-op on CPU), so wall-clock times cover it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_bytes(dev: torch.device) -> int:
    """Peak memory so far: allocated bytes on CUDA, the process's max RSS on CPU."""
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def seconds_per_step(step: Callable[[], None], steps: int, dev: torch.device) -> float:
    """Mean wall-clock seconds of ``steps`` calls of ``step`` (CUDA peak stats reset first)."""
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - t0) / steps
