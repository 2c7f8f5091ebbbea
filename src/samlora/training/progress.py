"""Progress reporting: a bar at a terminal, plain periodic log lines in batch jobs."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def is_interactive() -> bool:
    """True when stderr is a terminal (a person is watching), False under SLURM or pipes."""
    return sys.stderr.isatty()


def progress(items: Iterable[T], total: int, desc: str, every: int = 10) -> Iterator[T]:
    """Yield ``items``, showing a tqdm bar at a terminal or logging every ``every`` items."""
    if is_interactive():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, leave=False)
        return
    start = time.perf_counter()
    for i, item in enumerate(items, start=1):
        yield item
        if i % every == 0 or i == total:
            rate = i / max(time.perf_counter() - start, 1e-9)
            log.info("%s: %d/%d (%.2f it/s)", desc, i, total, rate)
