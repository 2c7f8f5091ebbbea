"""Preparation choices from ``data`` in params.yaml: annotator reference, resolution, subsets.

- ``reference``: ``first`` keeps the first annotator as the reference; ``union`` ORs every
  shipped annotator into it (SAM2LoRA's choice). The second observer stays in ``masks2/``
  as the human baseline either way (against a union reference it is no longer an
  independent observer; ``dataset.json`` records the choice).
- ``resolution``: ``native`` keeps each image's size; an integer N resizes so that the
  longest side is N (image bilinear with antialiasing; masks and FOV nearest neighbour,
  re-binarised). The native-size reference masks and FOV are kept under ``native/`` with
  index columns ``native_<column>``, and ``native_height``/``native_width`` give the
  mapping back (a plain resize: prepared images are not padded; padding to the model's
  square input happens later, in :mod:`samlora.data.transforms`). Evaluation compares
  predictions with these native masks.
- ``allow_subset``: accept a source holding only some of the split file's cases
  (:mod:`samlora.data.layout`).
- ``split_variants``: ``{dataset: variant}``; a dataset named there is prepared with that
  variant of its split file (``leave_one_out/<k>``: the k-th case of the sorted case list
  is the only test case; ``sam2lora_random``: SAM2LoRA's sklearn random split of the sorted
  cases; :mod:`samlora.data.split_variants`) instead of the file's own split; null keeps the
  file's split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samlora.data.split_files import check_variant
from samlora.data.transforms import resized_hw

log = logging.getLogger(__name__)

REFERENCES = ("first", "union")
#: Index columns giving the native size of each case.
NATIVE_SIZE_COLUMNS = ("native_height", "native_width")
NATIVE_DIR = "native"


@dataclass(frozen=True)
class PreparePolicy:
    """How a dataset is prepared beyond its labels' own decoding.

    Attributes:
        reference: ``first`` or ``union`` (see the module docstring).
        resolution: None for native size, else the longest side in px.
        allow_subset: accept a source holding only some of the split file's cases.
        split_variant: split-file variant of the dataset (``leave_one_out/<k>``,
            ``sam2lora_random``, ...), or None for the file's own split.
    """

    reference: str = "first"
    resolution: int | None = None
    allow_subset: bool = False
    split_variant: str | None = None

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(f"data.reference must be one of {list(REFERENCES)}, "
                             f"got {self.reference!r}")
        if self.resolution is not None and (not isinstance(self.resolution, int)
                                            or self.resolution < 16):
            raise ValueError(f"data.resolution must be 'native' or an integer >= 16, "
                             f"got {self.resolution!r}")

    @classmethod
    def from_config(cls, data_cfg: Mapping[str, Any], dataset: str | None = None
                    ) -> PreparePolicy:
        """Build from the ``data`` section (keys ``reference``, ``resolution``,
        ``allow_subset``, ``split_variants``; each optional) for ``dataset``.

        Raises:
            SplitFileError: ``split_variants`` names a variant the dataset's split file does
                not allow (the message lists the valid values).
        """
        res = data_cfg.get("resolution", "native")
        variant = (data_cfg.get("split_variants") or {}).get(dataset) if dataset else None
        variant = None if variant is None else str(variant)
        if dataset is not None:
            check_variant(dataset, variant)
        return cls(reference=str(data_cfg.get("reference", "first")),
                   resolution=None if res in (None, "native") else int(res),
                   allow_subset=bool(data_cfg.get("allow_subset", False)),
                   split_variant=variant)

    def info(self) -> dict[str, Any]:
        """What ``dataset.json`` records of the policy."""
        return {"reference": self.reference,
                "resolution": "native" if self.resolution is None else self.resolution,
                "split_variant": self.split_variant}


def native_columns(label_columns: Sequence[str]) -> list[str]:
    """Index columns added by the policy: native-size paths per label column, then sizes."""
    return [f"native_{c}" for c in label_columns] + list(NATIVE_SIZE_COLUMNS)


def apply_reference(labels: dict[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """Return ``labels`` with ``mask`` replaced by ``mask | mask2`` for the union reference.

    Args:
        labels: ``{column: H×W bool}``; ``mask2`` present where a second observer exists.
        reference: ``first`` (unchanged) or ``union``.
    """
    if reference == "union" and "mask2" in labels:
        return {**labels, "mask": labels["mask"] | labels["mask2"]}
    return labels


def _resize_image(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """H×W×3 uint8 -> h×w×3 uint8, bilinear (PIL widens the kernel when shrinking)."""
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BILINEAR))


def _resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """H×W bool -> h×w bool, nearest neighbour, re-binarised."""
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(im.resize((hw[1], hw[0]), Image.Resampling.NEAREST)) >= 128


def resize_case(image: np.ndarray, labels: Mapping[str, np.ndarray], longest: int | None
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Resize an image and its binary labels so that the longest side is ``longest``.

    Args:
        image: H×W×3 uint8.
        labels: ``{column: H×W bool}`` (masks and FOV).
        longest: target longest side in px, or None to keep the size.

    Returns:
        (h×w×3 uint8 image, ``{column: h×w bool}``); the inputs when nothing changes.
    """
    H, W = image.shape[:2]
    if longest is None or max(H, W) == longest:
        return image, dict(labels)
    hw = resized_hw(H, W, longest)
    return _resize_image(image, hw), {k: _resize_mask(v, hw) for k, v in labels.items()}


def finish_case(case: str, image: np.ndarray, labels: dict[str, np.ndarray],
                folders: Mapping[str, str], policy: PreparePolicy,
                write_png: Callable[[str, np.ndarray], None]
                ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """Apply the reference rule, keep native-size labels if resizing, then resize.

    Args:
        case: case id (file stem).
        image: H×W×3 uint8 at native size.
        labels: ``{column: H×W bool}`` for every label column and ``fov``.
        folders: ``{column: output folder}`` of each label column.
        policy: the preparation policy.
        write_png: ``write_png(relative path, H×W uint8)`` of the caller's output.

    Returns:
        (image, labels) at the prepared size and the index cells the policy adds
        (``native_<column>`` paths and ``native_height``/``native_width``).
    """
    labels = apply_reference(labels, policy.reference)
    H, W = image.shape[:2]
    row: dict[str, Any] = {"native_height": int(H), "native_width": int(W)}
    small, resized = resize_case(image, labels, policy.resolution)
    if small.shape[:2] != (H, W):
        for col, arr in labels.items():
            rel = f"{NATIVE_DIR}/{folders[col]}/{case}.png"
            write_png(rel, arr.astype(np.uint8) * 255)
            row[f"native_{col}"] = rel
    return small, resized, row


def stale_native_files(out_dir: Path, keep: set[Path]) -> list[Path]:
    """PNG files under ``out_dir/native`` that ``keep`` does not name."""
    folder = Path(out_dir) / NATIVE_DIR
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.rglob("*.png")) if p not in keep]
