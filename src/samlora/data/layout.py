"""Check a dataset's official layout on disk against its split file, and find it in a folder.

A case is *present* when its image file exists. Every present case must have all its
files (an image without its mask is an error naming the mask). A case the split file
names whose image is absent is an error naming the split file and the case, unless a
subset is allowed: then only the present cases are used and :class:`LayoutCheck` says
how many of the split file's cases are there (recorded in ``source.json`` and
``dataset.json``, never a silent drop).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samlora.data.errors import MissingFilesError
from samlora.data.registry import DatasetSpec, Record, describe_layout, missing_files

log = logging.getLogger(__name__)

_MAX_LISTED = 10  # files or cases named in an error message


@dataclass(frozen=True)
class LayoutCheck:
    """The outcome of checking a layout.

    Attributes:
        records: the present cases' records, in split-file order.
        absent: case ids of the split file whose image is absent (empty unless a subset).
        total: number of cases in the split file.
    """

    records: list[Record]
    absent: list[str]
    total: int

    @property
    def is_subset(self) -> bool:
        """True if some of the split file's cases are absent."""
        return bool(self.absent)

    def subset_info(self) -> dict[str, Any] | bool:
        """``False`` for a complete dataset, else what ``source.json`` records of the subset."""
        if not self.absent:
            return False
        counts: dict[str, int] = {}
        for rec in self.records:
            counts[rec.split] = counts.get(rec.split, 0) + 1
        return {"present": len(self.records), "of": self.total, "counts": counts,
                "absent_examples": self.absent[:5]}


def _listing(items: list[Any]) -> str:
    shown = "\n".join(f"  {p}" for p in items[:_MAX_LISTED])
    more = f"\n  … and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return shown + more


def missing_message(spec: DatasetSpec, root: Path, missing: list[Path]) -> str:
    """A message naming the missing files and showing the expected layout."""
    return (f"{spec.id}: {len(missing)} expected file(s) missing under {root}, e.g. "
            f"{missing[0]}; put the dataset's official files there (listed below) and run "
            f"the step again\n{_listing(missing)}\nexpected layout:\n"
            f"{describe_layout(spec, root)}")


def _empty_message(spec: DatasetSpec, root: Path) -> str:
    what = "is empty" if root.is_dir() and not any(root.iterdir()) else \
        "holds none of its images" if root.is_dir() else "does not exist"
    return (f"{spec.id}: folder {root} {what}; put the dataset's official layout there "
            f"(listed below), or set data.mirror to the folder that holds it\n"
            f"{describe_layout(spec, root)}")


def inspect_layout(spec: DatasetSpec, root: Path, allow_subset: bool = False,
                   variant: str | None = None) -> tuple[LayoutCheck | None, str]:
    """Check ``root`` without raising.

    Returns:
        (the check, "") if the layout is usable, else (None, the error message).
    """
    root = Path(root)
    recs = spec.records(root, variant)
    present = [r for r in recs if r.image.is_file()]
    absent = [r for r in recs if not r.image.is_file()]
    if not present:
        return None, _empty_message(spec, root)
    if absent and not allow_subset:
        cases = [f"{r.case} (no {r.image})" for r in absent]
        msg = (f"{spec.id}: the split file {spec.split.path} names {len(absent)} of "
               f"{len(recs)} case(s) missing from the data under {root}, e.g. {cases[0]}; "
               "put them there, or set data.allow_subset: true if this source holds a "
               f"subset on purpose\n{_listing(cases)}")
        return None, msg + "\n" + missing_message(spec, root, missing_files(absent))
    missing = missing_files(present)
    if missing:
        return None, missing_message(spec, root, missing)
    return LayoutCheck(present, [r.case for r in absent], len(recs)), ""


def check_layout(spec: DatasetSpec, root: Path, allow_subset: bool = False,
                 variant: str | None = None) -> LayoutCheck:
    """Check the official layout under ``root`` against ``spec``'s split file.

    Args:
        spec: the dataset.
        root: the layout's root folder.
        allow_subset: accept a source holding only some of the split file's cases.
        variant: split variant (``leave_one_out/<k>``, ``sam2lora_random``, ...) or None.

    Returns:
        The present records and, for a subset, the absent case ids.

    Raises:
        MissingFilesError: an empty folder; a present case missing a file (named); or,
            without ``allow_subset``, split-file cases absent (the split file and the
            cases are named).
    """
    check, msg = inspect_layout(spec, root, allow_subset, variant)
    if check is None:
        raise MissingFilesError(msg)
    if check.is_subset:
        log.warning("%s: %d of the split file's %d cases are present under %s (subset)",
                    spec.id, len(check.records), check.total, root)
    return check


def _candidates(base: Path, depth: int = 3) -> Iterator[Path]:
    """``base`` and its sub-folders up to ``depth`` levels, shallow first, hidden ones skipped."""
    queue = deque([(base, 0)])
    while queue:
        folder, level = queue.popleft()
        yield folder
        if level < depth:
            subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            queue.extend((p, level + 1) for p in subs)


def find_layout(spec: DatasetSpec, base: Path, allow_subset: bool = False
                ) -> tuple[Path | None, Path | None]:
    """Search ``base`` (and sub-folders) for the official layout.

    Returns:
        (usable root or None, the most complete partial root or None).
    """
    if not base.is_dir():
        return None, None
    best, best_found = None, 0
    for folder in _candidates(base):
        check, _ = inspect_layout(spec, folder, allow_subset)
        if check is not None:
            return folder, None
        recs = spec.records(folder)
        found = sum(len(r.files()) for r in recs) - len(missing_files(recs))
        if found > best_found:
            best, best_found = folder, found
    return None, best


def pick_existing(*candidates: Path) -> Path:
    """The first of ``candidates`` that is a file, else the first one.

    For readers of datasets whose files come in alternative forms (STARE's ``.ppm`` or the
    official ``.ppm.gz``; HRF's ``.jpg`` or ``.JPG``); the only disk access a reader makes.
    A missing file is then reported under its primary name.
    """
    return next((p for p in candidates if p.is_file()), candidates[0])


def scan_root(spec: DatasetSpec, raw_dir: Path, mirror: Path | None) -> Path:
    """Where to list a dataset's cases before it has a split file (for ``samlora split``).

    The mirror's folder if a mirror is set, else the first folder under ``raw_dir/<id>``
    (shallow first, three levels deep) in which ``spec.scan`` finds a case.

    Raises:
        ValueError: the spec has no scanner (its split is committed with the package).
        FileNotFoundError: no folder holds a case.
    """
    if spec.scan is None:
        raise ValueError(f"{spec.id}: the registry has no scanner for this dataset; its "
                         "split is official or conventional and committed with the package")
    if mirror is not None:
        return Path(mirror) / spec.folder
    base = Path(raw_dir) / spec.id
    if base.is_dir():
        for folder in _candidates(base):
            if spec.scan(folder):
                return folder
    raise FileNotFoundError(f"{spec.id}: no case found under {base}; place the data there "
                            f"first (or pass --root)")
