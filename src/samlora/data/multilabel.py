"""Several binary targets per case: decode a record's labels and name their index columns.

A prepared folder keeps the dataset's primary label (vessel, or disc for disc/cup sets)
in ``masks/`` (column ``mask``), a second observer's in ``masks2/`` (column ``mask2``),
and each further label kind ``k`` of :attr:`DatasetSpec.extra_labels` in ``masks_k/``
(column ``mask_k``; empty where a case lacks it, e.g. a cup drawn on some images only).

A structure every image of a dataset shows (:data:`SHOWN_IN_EVERY_IMAGE`: the optic disc
and cup of the disc/cup sets) must decode to a non-empty mask: an empty one is an error
naming the file (a grey-coded or palette mask read with the wrong rule, a wrong file),
never a silent empty target.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samlora.data.errors import LabelFormatError, SizeMismatchError
from samlora.data.io import IMAGE_SUFFIXES
from samlora.data.labels import LabelOptions, SoftMap, decode_label, describe_reader
from samlora.data.registry import DatasetSpec, Record

#: FOV policies of :attr:`DatasetSpec.fov_default` and the ``fov_source`` they record.
FOV_SOURCES = {"computed": "computed", "whole": "whole_image"}
#: Per task, the structures every image shows. A decoded mask of one of them that comes
#: out empty is an error; a structure some images lack is reported absent by its reader
#: (None, e.g. a G1020 JSON without a cup polygon), which leaves an empty index cell.
SHOWN_IN_EVERY_IMAGE: dict[str, tuple[str, ...]] = {"disc_cup": ("disc", "cup")}


def extra_columns(spec: DatasetSpec) -> list[str]:
    """Index columns of the further label kinds (``mask_cup`` for ``cup``)."""
    return [f"mask_{kind}" for kind in spec.extra_labels]


def label_folder(column: str) -> str:
    """Output folder of a label column: ``mask`` -> ``masks``, ``mask_cup`` -> ``masks_cup``."""
    return "masks" + column[len("mask"):]


def label_column(spec_info: dict[str, Any], label: str | None) -> str:
    """The index column holding ``label`` in a prepared folder.

    Args:
        spec_info: the folder's ``dataset.json`` (``primary_label``, ``label_columns``).
        label: a label kind (``disc``, ``cup``), or None for the primary label.

    Raises:
        KeyError: the dataset has no such label kind (lists the kinds it has).
    """
    if label is None or label == spec_info.get("primary_label"):
        return "mask"
    columns = spec_info.get("label_columns", {})
    if label not in columns:
        kinds = [spec_info.get("primary_label", "?"), *columns]
        raise KeyError(f"dataset {spec_info.get('id')!r} has no label {label!r}; "
                       f"it has {kinds}")
    return columns[label]


def has_image_header(path: Path) -> bool:
    """True for label files that are images (their size can be read from the header)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def structure_of(spec: DatasetSpec, column: str) -> str:
    """The structure a label column holds: ``mask`` and ``mask2`` the primary label,
    ``mask_<kind>`` its kind without a trailing observer number (``mask_cup2`` -> ``cup``)."""
    if column in ("mask", "mask2"):
        return spec.primary_label
    return column[len("mask_"):].rstrip("0123456789")


def _shown(spec: DatasetSpec, column: str, path: Path, reader: Any,
           arr: np.ndarray | None) -> np.ndarray | None:
    """``arr``, after checking that a structure every image shows is not decoded empty."""
    structure = structure_of(spec, column)
    if arr is not None and not arr.any() \
            and structure in SHOWN_IN_EVERY_IMAGE.get(spec.task, ()):
        raise LabelFormatError(
            f"{path}: decodes to an empty {structure} mask ({describe_reader(reader)}), but "
            f"every {spec.id} image shows its {structure}; replace the file with the one from "
            "the dataset's official release")
    return arr


def _checked(rec: Record, hw: tuple[int, int], path: Path, what: str,
             arr: np.ndarray | None) -> np.ndarray | None:
    if arr is not None and tuple(arr.shape[:2]) != tuple(hw):
        raise SizeMismatchError(
            f"{what} {path} is {arr.shape[1]}×{arr.shape[0]} (w×h) but its image "
            f"{rec.image} is {hw[1]}×{hw[0]}; a label must have its image's size: "
            "replace the pair with the files of the dataset's official release")
    return arr


def decode_labels(rec: Record, spec: DatasetSpec, hw: tuple[int, int],
                  options: LabelOptions) -> dict[str, np.ndarray]:
    """Decode every label of ``rec`` and check it has its image's size.

    Args:
        rec: the case.
        spec: its dataset (declares which extra kinds may appear).
        hw: (H, W) of the decoded image.
        options: label decoding choices (soft-map rule).

    Returns:
        ``{column: H×W bool}`` for ``mask``, ``mask2`` (where shipped) and each
        ``mask_<kind>`` the case has; ``{}`` for a case shipped without a reference label
        (``rec.mask`` None), which is prepared with empty label columns.

    Raises:
        LabelFormatError: the primary label is absent from its file, a structure every
            image shows decodes empty (:data:`SHOWN_IN_EVERY_IMAGE`), or the record
            carries a kind its spec does not declare.
        SizeMismatchError: a label differs from the image's size (names both files).
    """
    if rec.mask is None:
        return {}
    mask = decode_label(rec.mask, rec.mask_reader, hw, options)
    if mask is None:
        raise LabelFormatError(f"{rec.mask}: holds no {spec.primary_label} annotation")
    out = {"mask": _shown(spec, "mask", rec.mask, rec.mask_reader,
                          _checked(rec, hw, rec.mask, "mask", mask))}
    if rec.mask2 is not None:
        arr = decode_label(rec.mask2, rec.mask2_reader, hw, options)
        if arr is not None:
            out["mask2"] = _shown(spec, "mask2", rec.mask2, rec.mask2_reader,
                                  _checked(rec, hw, rec.mask2, "second-observer mask", arr))
    for lab in rec.extra:
        if lab.kind not in spec.extra_labels:
            raise LabelFormatError(f"{spec.id}: case {rec.case} carries label kind "
                                   f"{lab.kind!r}, not among {list(spec.extra_labels)}")
        arr = decode_label(lab.path, lab.reader, hw, options)
        if arr is not None:
            column = f"mask_{lab.kind}"
            out[column] = _shown(spec, column, lab.path, lab.reader,
                                 _checked(rec, hw, lab.path, f"{lab.kind} mask", arr))
    return out


def default_fov(spec: DatasetSpec, hw: tuple[int, int]) -> np.ndarray | None:
    """The whole-image FOV for ``fov_default == "whole"``; None where it must be computed."""
    if spec.fov_default not in FOV_SOURCES:
        raise ValueError(f"{spec.id}: fov_default must be one of {list(FOV_SOURCES)}, "
                         f"got {spec.fov_default!r}")
    return np.ones(hw, dtype=bool) if spec.fov_default == "whole" else None


def label_info(spec: DatasetSpec, records: Sequence[Record],
               options: LabelOptions) -> dict[str, Any]:
    """What ``dataset.json`` records about the labels: kinds, columns and decoding."""
    readers: dict[str, str] = {}
    for rec in records[:1]:
        readers["mask"] = describe_reader(rec.mask_reader)
        if rec.mask2 is not None:
            readers["mask2"] = describe_reader(rec.mask2_reader)
        readers.update({f"mask_{lab.kind}": describe_reader(lab.reader) for lab in rec.extra})
    info: dict[str, Any] = {
        "primary_label": spec.primary_label,
        "label_columns": {kind: f"mask_{kind}" for kind in spec.extra_labels},
        "label_readers": readers,
    }
    used = (r for rec in records
            for r in (rec.mask_reader, rec.mask2_reader, *(lab.reader for lab in rec.extra)))
    if any(isinstance(r, SoftMap) for r in used):
        info["soft_maps"] = options.soft_maps
    return info
