"""The memory allocator of the heavy steps (``train.allocator``), chosen before torch loads.

A CPU training step of SAM at 1024² allocates gigabytes of fresh activations every step.
glibc's malloc hands each large block back to the kernel when it is freed (``munmap``), so
the next step page-faults the same memory in again, 4 KiB at a time; measured here that
kernel work was two thirds of a ViT-B 1024² step (``benchmarks/bench_speed.py``). The
fixes are settings of the process, read by the dynamic loader, so they must be in the
environment before Python starts:

- ``jemalloc``: Debian's ``libjemalloc2`` (or conda's ``jemalloc``) through ``LD_PRELOAD``,
  with freed pages kept for reuse (``dirty_decay_ms:-1,muzzy_decay_ms:-1``);
- ``hugepages``: glibc's own malloc with transparent huge pages (``glibc.malloc.hugetlb=1``,
  glibc 2.35 or later): the same faults, 2 MiB at a time;
- ``system``: the process as started;
- ``auto`` (default): ``jemalloc`` where the library is found, else ``hugepages`` where
  glibc has the tunable, else ``system``.

``python -m samlora train|predict|evaluate`` restarts itself once with the chosen setting
(:func:`restart_with`). The allocator changes no arithmetic, so it is not part of a run's
identity. ``SAMLORA_ALLOCATOR`` in the environment says which one a process runs with.
"""

from __future__ import annotations

import glob
import logging
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

ALLOCATORS = ("auto", "jemalloc", "hugepages", "system")
#: Set in a restarted process: the allocator it runs with (and: do not restart again).
MARKER = "SAMLORA_ALLOCATOR"
#: jemalloc keeps freed pages for reuse instead of returning them to the kernel.
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
HUGEPAGES_TUNABLE = "glibc.malloc.hugetlb=1"


def find_jemalloc(environ: Mapping[str, str] | None = None) -> Path | None:
    """``libjemalloc.so.2`` of the active conda environment or the system, if installed."""
    env = os.environ if environ is None else environ
    roots = [env[k] for k in ("CONDA_PREFIX",) if env.get(k)] + [sys.prefix, "/usr", "/"]
    for root in roots:
        for pattern in ("lib/libjemalloc.so.2", "lib/*-linux-gnu/libjemalloc.so.2",
                        "lib64/libjemalloc.so.2"):
            hits = sorted(glob.glob(str(Path(root) / pattern)))
            if hits:
                return Path(hits[0])
    return None


def glibc_has_hugetlb() -> bool:
    """Whether this process's C library is glibc 2.35 or later (``glibc.malloc.hugetlb``)."""
    libc, version = platform.libc_ver()
    if libc != "glibc" or not version:
        return False
    major, _, minor = version.partition(".")
    try:
        return (int(major), int(minor.split(".")[0])) >= (2, 35)
    except ValueError:
        return False


def resolve(name: str, environ: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """``(allocator, environment additions)`` for ``train.allocator: name`` on this machine.

    Raises ValueError for an unknown name, and for ``jemalloc`` or ``hugepages`` where this
    machine lacks them (``auto`` falls back instead).
    """
    env = os.environ if environ is None else environ
    if name not in ALLOCATORS:
        raise ValueError(f"train.allocator: {name!r} is not one of {list(ALLOCATORS)}")
    if name == "system" or not sys.platform.startswith("linux"):
        if name in ("jemalloc", "hugepages"):
            raise ValueError(f"train.allocator: {name} needs Linux; use auto or system")
        return "system", {}
    if name in ("auto", "jemalloc"):
        lib = find_jemalloc(env)
        if lib is not None:
            preload = " ".join(p for p in (str(lib), env.get("LD_PRELOAD", "")) if p)
            return "jemalloc", {"LD_PRELOAD": preload,
                                "MALLOC_CONF": env.get("MALLOC_CONF") or JEMALLOC_CONF}
        if name == "jemalloc":
            raise ValueError("train.allocator: jemalloc is not installed (apt-get install "
                             "libjemalloc2, or conda install jemalloc); use auto or system")
    if glibc_has_hugetlb():
        tunables = ":".join(t for t in (env.get("GLIBC_TUNABLES", ""), HUGEPAGES_TUNABLE) if t)
        return "hugepages", {"GLIBC_TUNABLES": tunables}
    if name == "hugepages":
        raise ValueError("train.allocator: hugepages needs glibc 2.35 or later; use auto or "
                         "system")
    return "system", {}


def restart_with(name: str, argv: Sequence[str]) -> None:
    """Restart this ``python -m samlora`` process under ``train.allocator: name``.

    Returns (and the step runs here) where the process already runs under its allocator
    (``SAMLORA_ALLOCATOR`` set) or the choice needs no change of environment; otherwise
    replaces the process with ``python -m samlora <argv>`` and never returns.
    """
    if os.environ.get(MARKER):
        log.info("memory allocator: %s", os.environ[MARKER])
        return
    chosen, additions = resolve(name)
    if not additions:
        return
    env = {**os.environ, **additions, MARKER: chosen}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "samlora", *argv], env)


def current() -> str:
    """The allocator this process runs with: ``SAMLORA_ALLOCATOR``, else ``system``."""
    return os.environ.get(MARKER) or "system"
