"""The table behind ``python -m samlora datasets``: every registered dataset at a glance.

Per dataset: task, label kinds, split convention and counts per split (from the split
file), whether it is present (downloaded or placed under ``raw_dir``, or in the mirror),
its image sizes (from the prepared index, else from the image headers), and where it
came from (the recorded origin, else the registry's source).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from samlora.data.download import SOURCE_JSON
from samlora.data.layout import inspect_layout
from samlora.data.registry import DatasetSpec, dataset_ids, get_dataset
from samlora.data.split_files import SplitFileError

log = logging.getLogger(__name__)

COLUMNS = ("dataset", "task", "labels", "split", "train", "val", "test", "present",
           "image_sizes", "origin")


def _size_span(sizes: list[tuple[int, int]]) -> str:
    """``W×H`` for one size, else ``W×H … W×H`` (smallest and largest area)."""
    if not sizes:
        return ""
    uniq = sorted(set(sizes), key=lambda hw: (hw[0] * hw[1], hw))
    fmt = [f"{w}×{h}" for h, w in (uniq[0], uniq[-1])]
    return fmt[0] if len(uniq) == 1 else f"{fmt[0]} … {fmt[1]} ({len(uniq)} sizes)"


def _header_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    sizes = []
    for p in paths:
        try:
            with Image.open(p) as im:
                sizes.append((im.height, im.width))
        except (OSError, SyntaxError, ValueError):
            log.warning("%s: image header unreadable", p)
    return sizes


def _index_sizes(index_csv: Path) -> list[tuple[int, int]]:
    index = pd.read_csv(index_csv, keep_default_na=False)
    h, w = ("native_height", "native_width") if "native_height" in index else ("height", "width")
    return list(zip(index[h].astype(int), index[w].astype(int), strict=True))


def _locate(spec: DatasetSpec, raw_dir: Path, mirror: Path | None) -> tuple[Path | None, str]:
    """(layout root or None, origin text) of a dataset on this machine."""
    source = raw_dir / spec.id / SOURCE_JSON
    if source.is_file():
        rec = json.loads(source.read_text())
        return Path(rec["root"]), f"{rec.get('origin', '?')}: {rec.get('location', '')}"
    if mirror is not None and (mirror / spec.folder).is_dir():
        return mirror / spec.folder, f"mirror (not fetched): {mirror}"
    how = "registration at" if spec.source.registration else \
        "download from" if spec.source.archives else "manual placement from"
    return None, f"{how} {spec.source.homepage}"


def dataset_row(spec: DatasetSpec, raw_dir: Path, processed_dir: Path,
                mirror: Path | None) -> dict[str, Any]:
    """One row of the catalogue (see :data:`COLUMNS`)."""
    row: dict[str, Any] = {"dataset": spec.id, "task": spec.task,
                           "labels": ",".join(spec.label_kinds)}
    try:
        split = spec.split
        row["split"] = split.convention
        row |= {k: split.counts().get(k, 0) for k in ("train", "val", "test")}
    except SplitFileError:
        row |= {"split": "no split file", "train": 0, "val": 0, "test": 0}
    root, origin = _locate(spec, raw_dir, mirror)
    row["origin"] = origin
    row["present"], row["image_sizes"] = "no", ""
    if root is None or row["split"] == "no split file":
        return row
    check, _ = inspect_layout(spec, root, allow_subset=True)
    if check is None:
        row["present"] = f"incomplete ({root})"
        return row
    row["present"] = "yes" if not check.is_subset else \
        f"subset {len(check.records)}/{check.total}"
    index_csv = processed_dir / spec.id / "index.csv"
    sizes = _index_sizes(index_csv) if index_csv.is_file() else \
        _header_sizes([r.image for r in check.records if not r.image.name.endswith(".gz")])
    row["image_sizes"] = _size_span(sizes)
    return row


def catalogue(raw_dir: Path, processed_dir: Path, mirror: Path | None,
              names: list[str] | None = None) -> pd.DataFrame:
    """The catalogue of ``names`` (default: every registered dataset), one row each."""
    rows = [dataset_row(get_dataset(n), Path(raw_dir), Path(processed_dir), mirror)
            for n in (names or dataset_ids())]
    return pd.DataFrame(rows, columns=list(COLUMNS))
