"""How many CPUs this process may keep busy: its SLURM allocation's, else its CPU affinity's.

``os.cpu_count()`` counts the whole node. A SLURM job holds a few of its cores, and where the
cluster does not pin jobs to them (``TaskPlugin=task/none``, no cgroups) the affinity mask
still shows every core, so worker pools and torch's threads would crowd the other jobs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

log = logging.getLogger(__name__)


def allocated_cpus(environ: Mapping[str, str] | None = None) -> int:
    """CPUs this process may use (at least 1).

    The SLURM allocation, read from the first of: ``SLURM_CPUS_PER_TASK`` (``-c``);
    ``SLURM_CPUS_PER_GPU`` times the GPUs (``SLURM_GPUS_ON_NODE``, else the count in
    ``SLURM_GPUS``, e.g. ``2`` or ``a100:2``); ``SLURM_CPUS_ON_NODE``. It is capped by the
    CPUs the affinity mask allows (``os.sched_getaffinity``), which alone decides outside
    SLURM; ``os.cpu_count()`` where the platform has no affinity call.
    """
    env = os.environ if environ is None else environ
    usable = _affinity()
    slurm = _slurm_cpus(env)
    if slurm is not None:
        return max(1, min(slurm, usable) if usable else slurm)
    return max(1, usable or os.cpu_count() or 1)


def use_allocated_cpus() -> int:
    """Set torch's intra-op threads to :func:`allocated_cpus` (torch's own default counts
    the node's cores); returns the count."""
    import torch

    n = allocated_cpus()
    torch.set_num_threads(n)
    log.info("using %d CPU thread(s) (%s)", n,
             "the SLURM allocation" if _slurm_cpus(os.environ) is not None
             else "this process's CPU affinity")
    return n


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0)) or None
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return None


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def _gpu_count(env: Mapping[str, str]) -> int | None:
    on_node = _positive_int(env.get("SLURM_GPUS_ON_NODE"))
    if on_node is not None:
        return on_node
    gpus = env.get("SLURM_GPUS")  # --gpus as given: "2", "a100:2", "gpu:a100:2"
    if gpus:
        m = re.search(r"(\d+)$", gpus.strip())
        return _positive_int(m.group(1)) if m else None
    return None


def _slurm_cpus(env: Mapping[str, str]) -> int | None:
    per_task = _positive_int(env.get("SLURM_CPUS_PER_TASK"))
    if per_task is not None:
        return per_task
    per_gpu = _positive_int(env.get("SLURM_CPUS_PER_GPU"))
    gpus = _gpu_count(env)
    if per_gpu is not None and gpus is not None:
        return per_gpu * gpus
    return _positive_int(env.get("SLURM_CPUS_ON_NODE"))
