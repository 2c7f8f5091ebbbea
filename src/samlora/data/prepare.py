"""Convert a dataset's official layout to native-resolution PNGs plus ``index.csv``.

Output under ``out_dir``::

    images/<case>.png   RGB, lossless
    masks/<case>.png    reference label, 0/255
    masks2/<case>.png   second observer, 0/255 (where shipped)
    fov/<case>.png      field of view, 0/255 (official where shipped, else computed)
    native/<folder>/<case>.png   native-size labels and FOV (only when data.resolution
                        resizes; see :mod:`samlora.data.policy`)
    dataset.json        id, task, labels, split convention and variant, counts, source,
                        reference, resolution, subset
    index.csv           case, split, image, mask, mask2, fov, fov_source, height, width
                        (prepared size), extra label columns, native_<label column>
                        paths, native_height, native_width; ``mask`` is empty for a case
                        its release ships without a reference label (counted under
                        ``unlabelled`` in dataset.json; predicted, not scored)

Re-running changes nothing that is already right (same bytes, same mtime). The first
file that does change removes ``index.csv`` and ``dataset.json``; they are written last,
so an interrupted run never looks complete.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from samlora.data.errors import ImageReadError, SizeMismatchError
from samlora.data.fov import compute_fov
from samlora.data.io import (
    mask_to_uint8,
    png_matches,
    read_image,
    read_mask,
    write_bytes_if_changed,
    write_png,
)
from samlora.data.labels import LabelOptions
from samlora.data.layout import check_layout
from samlora.data.multilabel import (
    FOV_SOURCES,
    decode_labels,
    default_fov,
    extra_columns,
    has_image_header,
    label_folder,
    label_info,
)
from samlora.data.policy import (
    NATIVE_SIZE_COLUMNS,
    PreparePolicy,
    finish_case,
    native_columns,
    stale_native_files,
)
from samlora.data.registry import DatasetSpec, Record, get_dataset
from samlora.data.split_files import SPLIT_NAMES
from samlora.training.progress import progress
from samlora.utils.cpus import allocated_cpus

log = logging.getLogger(__name__)

INDEX_CSV = "index.csv"
DATASET_JSON = "dataset.json"
COLUMNS = ("case", "split", "image", "mask", "mask2", "fov", "fov_source", "height", "width")
SUBDIRS = ("images", "masks", "masks2", "fov")


class _Output:
    """Writes PNGs under ``out_dir`` only when their pixels change; the first change
    removes the completion markers (index.csv, dataset.json)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._lock = threading.Lock()
        self.changed = 0

    def _invalidate(self) -> None:
        with self._lock:
            if self.changed == 0:
                for name in (INDEX_CSV, DATASET_JSON):
                    (self.out_dir / name).unlink(missing_ok=True)
            self.changed += 1

    def png(self, rel: str, arr: np.ndarray) -> None:
        """Write ``arr`` to ``out_dir/rel`` as PNG unless the file already holds it."""
        path = self.out_dir / rel
        if png_matches(path, arr):
            return
        self._invalidate()
        write_png(path, arr)

    def remove(self, path: Path) -> None:
        """Delete a stale output file."""
        self._invalidate()
        path.unlink()


def _check_size(image_path: Path, shape: tuple[int, int], other: Path, what: str,
                other_shape: tuple[int, ...]) -> None:
    if tuple(other_shape[:2]) != tuple(shape):
        raise SizeMismatchError(
            f"{what} {other} is {other_shape[1]}×{other_shape[0]} (w×h) but its image "
            f"{image_path} is {shape[1]}×{shape[0]}; a label must have its image's size: "
            "replace the pair with the files of the dataset's official release")


def _header_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header only (no decode)."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, SyntaxError, ValueError) as exc:
        why = "corrupt, empty or unknown format" if str(path) in str(exc) else str(exc)
        raise ImageReadError(f"{path}: not a readable image ({why}); replace it with the file "
                             "from the dataset's official release and run the step again") \
            from exc


def preflight(records: list[Record]) -> None:
    """Check every label's header size against its image before anything is written.

    Raises:
        SizeMismatchError: naming the label and the image.
        ImageReadError: a header cannot be read.
    """
    for rec in records:
        if not has_image_header(rec.image):
            continue  # .gz, NIfTI, .mat: checked after decoding
        hw = _header_size(rec.image)
        for what, p in (("mask", rec.mask), ("second-observer mask", rec.mask2),
                        ("FOV mask", rec.fov), *((lab.kind, lab.path) for lab in rec.extra)):
            if p is not None and has_image_header(p):  # not .gz, .json, .txt, .mat
                _check_size(rec.image, hw, p, what, _header_size(p))


def _prepare_case(rec: Record, out: _Output, fov_cfg: Mapping[str, Any], spec: DatasetSpec,
                  options: LabelOptions, policy: PreparePolicy) -> dict[str, Any]:
    """Decode one case and check its sizes, then write its PNGs; returns its index row."""
    image = read_image(rec.image)
    hw = image.shape[:2]
    labels = decode_labels(rec, spec, hw, options)
    whole = default_fov(spec, hw)
    if rec.fov is not None:
        labels["fov"] = read_mask(rec.fov)
        _check_size(rec.image, hw, rec.fov, "FOV mask", labels["fov"].shape)
    elif whole is not None:
        labels["fov"] = whole
    else:
        labels["fov"] = compute_fov(image, float(fov_cfg["red_threshold"]),
                                    int(fov_cfg["radius"]))
    row: dict[str, Any] = {"case": rec.case, "split": rec.split,
                           "image": f"images/{rec.case}.png", "mask": "", "mask2": "",
                           **{col: "" for col in extra_columns(spec)},
                           **{col: "" for col in native_columns(_label_columns(spec))}}
    folders = {key: "fov" if key == "fov" else label_folder(key) for key in labels}
    image, labels, native = finish_case(rec.case, image, labels, folders, policy, out.png)
    row.update(native)
    out.png(row["image"], image)
    for key, arr in labels.items():
        row[key] = f"{folders[key]}/{rec.case}.png"
        out.png(row[key], mask_to_uint8(arr))
    row["fov_source"] = "official" if rec.fov is not None else FOV_SOURCES[spec.fov_default]
    row["height"], row["width"] = int(image.shape[0]), int(image.shape[1])
    return row


def _label_columns(spec: DatasetSpec) -> list[str]:
    """Index columns holding label paths: mask, mask2, the extra kinds, fov."""
    return ["mask", "mask2", *extra_columns(spec), "fov"]


def _remove_stale(out: _Output, index: pd.DataFrame, extra: list[str]) -> None:
    """Delete PNGs in the output sub-folders that the new index does not reference."""
    cols = ("image", "mask", "mask2", "fov", *extra)
    keep = {out.out_dir / p for col in cols for p in index[col] if p}
    stale_label_dirs = sorted(p.name for p in out.out_dir.glob("masks_*") if p.is_dir())
    for sub in dict.fromkeys((*SUBDIRS, *stale_label_dirs)):
        folder = out.out_dir / sub
        if folder.is_dir():
            for path in sorted(folder.glob("*.png")):
                if path not in keep:
                    log.info("removing stale %s", path)
                    out.remove(path)
    native = {out.out_dir / p for col in index.columns if col.startswith("native_")
              and col not in NATIVE_SIZE_COLUMNS for p in index[col] if p}
    for path in stale_native_files(out.out_dir, native):
        log.info("removing stale %s", path)
        out.remove(path)


def _dataset_json(spec: DatasetSpec, source_root: Path, index: pd.DataFrame,
                  fov_cfg: Mapping[str, Any]) -> dict[str, Any]:
    counts = {s: int((index["split"] == s).sum()) for s in SPLIT_NAMES
              if s != "val" or (index["split"] == s).any()}
    info: dict[str, Any] = {
        "id": spec.id, "task": spec.task, "label_kinds": list(spec.label_kinds),
        "labels": dict(spec.labels), "split_convention": spec.split_convention,
        "counts": counts, "num_cases": int(len(index)),
        "num_second_observer": int((index["mask2"] != "").sum()),
        **_unlabelled_info(spec, index),
        "fov_sources": {k: int(v) for k, v in index["fov_source"].value_counts().items()},
        "source": {"root": str(Path(source_root).resolve()), "homepage": spec.source.homepage,
                   "citation": spec.source.citation},
        "file_ending": ".png",
    }
    if (index["fov_source"] == "computed").any():
        info["fov_params"] = {"red_threshold": float(fov_cfg["red_threshold"]),
                              "radius": int(fov_cfg["radius"])}
    return info


def _unlabelled_info(spec: DatasetSpec, index: pd.DataFrame) -> dict[str, Any]:
    """``{"unlabelled": {count, cases, note}}`` for cases prepared without a reference
    label (empty ``mask`` column; predicted, not scored), else ``{}``."""
    cases = [str(c) for c in index.loc[index["mask"] == "", "case"]]
    if not cases:
        return {}
    return {"unlabelled": {"count": len(cases), "cases": cases,
                           "note": spec.source.unlabelled}}


def prepare_dataset(name: str, source_root: Path, out_dir: Path,
                    fov_cfg: Mapping[str, Any], workers: int | None = None,
                    options: LabelOptions | None = None,
                    policy: PreparePolicy | None = None) -> pd.DataFrame:
    """Convert dataset ``name`` from its official layout under ``source_root`` to ``out_dir``.

    Images stay at native resolution. Each mask and FOV mask must have its image's size.

    Args:
        name: registry id.
        source_root: root of the official layout (``source.json``'s ``root``).
        out_dir: ``data/processed/<name>``.
        fov_cfg: ``data.fov`` of params.yaml (``red_threshold``, ``radius``), used for
            datasets without official FOV masks.
        workers: threads decoding and encoding images; default min(4, the CPUs this job
            holds: :func:`samlora.utils.cpus.allocated_cpus`).
        options: label decoding choices (``data.soft_maps``); default majority.
        policy: annotator reference, resolution, subset and split-variant choices
            (``data.reference``, ``data.resolution``, ``data.allow_subset``,
            ``data.split_variants``); default first / native / no subset / the split
            file's own split.

    Returns:
        The index (columns :data:`COLUMNS`, then ``mask_<kind>`` per extra label kind of
        the dataset), as written to ``out_dir/index.csv``.

    Raises:
        MissingFilesError, ImageReadError, SizeMismatchError: each names the file(s).
        SplitFileError: the policy's split variant is not one the split file allows.
    """
    spec = get_dataset(name)
    source_root, out_dir = Path(source_root), Path(out_dir)
    policy = policy or PreparePolicy()
    layout = check_layout(spec, source_root, policy.allow_subset, policy.split_variant)
    records = layout.records
    preflight(records)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = _Output(out_dir)
    options = options or LabelOptions()
    n = workers or min(4, allocated_cpus())
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(_prepare_case, rec, out, fov_cfg, spec, options, policy)
                   for rec in records]
        try:
            rows = [f.result() for f in progress(futures, len(futures), f"prepare {name}")]
        except BaseException:
            for f in futures:
                f.cancel()  # stop queued cases; index.csv stays unwritten
            raise
    index = pd.DataFrame(rows, columns=[*COLUMNS, *extra_columns(spec),
                                        *native_columns(_label_columns(spec))])
    _remove_stale(out, index, extra_columns(spec))
    info = (_dataset_json(spec, source_root, index, fov_cfg) | label_info(spec, records, options)
            | policy.info() | {"subset": layout.subset_info()})
    if "unlabelled" in info:
        log.warning("%s: %d case(s) have %s; they are prepared and predicted, not scored",
                    name, info["unlabelled"]["count"],
                    info["unlabelled"]["note"] or "no reference label in this source")
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    if write_bytes_if_changed(out_dir / DATASET_JSON, text.encode()):
        out.changed += 1
    csv = index.to_csv(index=False, lineterminator="\n")
    if write_bytes_if_changed(out_dir / INDEX_CSV, csv.encode()):
        out.changed += 1
    log.info("%s: %d cases (%s) in %s; %d file(s) written", name, len(index),
             info["counts"], out_dir, out.changed)
    return index
