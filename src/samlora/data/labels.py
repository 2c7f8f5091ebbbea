"""Label readers: each annotation convention decoded to one binary H×W mask per label kind.

A record names its label files; a reader turns one file into one binary target. Readers
are small frozen dataclasses (comparable, printable, recorded in ``dataset.json``):

- :class:`BinaryImage`: a 0/255 (or 0/1, palette, 1-bit) label image;
- :class:`AnyChannel`: a label drawn in one colour (pure red on black reads as grey 76,
  below the usual threshold), stored as RGB, palette or grey;
- :class:`SoftMap`: multi-expert agreement maps (0/64/128/191/255): majority (≥ 128) or
  union (> 0), chosen by :class:`LabelOptions`;
- :class:`OneMap`: one grey map for disc and cup (0 cup, 128 rim, 255 background);
- :class:`LabelmePolygons`: labelme-style JSON, the shapes of one label rasterised;
- :class:`ContourText`: whitespace-separated ``x y`` vertex pairs;
- :class:`MatMap`: a label map stored as a variable of a MATLAB ``.mat`` file (optionally
  centre-cropped where it is wider than its image).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import scipy.io
from PIL import Image

from samlora.data.errors import LabelFormatError, SizeMismatchError
from samlora.data.io import read_image, read_image_any, read_mask
from samlora.data.rasterise import rasterise_polygons

log = logging.getLogger(__name__)

#: Ways of binarising multi-expert soft maps (``data.soft_maps`` in params.yaml).
SOFT_MAP_RULES = ("majority", "union")
#: Grey levels of a Drishti-GS1 soft map: share of the experts marking a pixel.
SOFT_MAP_LEVELS = (0, 64, 128, 191, 255)


@dataclass(frozen=True)
class LabelOptions:
    """Choices that change how labels are decoded (from ``data`` in params.yaml).

    Attributes:
        soft_maps: ``majority`` (grey ≥ 128, at least half the experts) or ``union``
            (grey > 0, any expert).
    """

    soft_maps: str = "majority"

    def __post_init__(self) -> None:
        if self.soft_maps not in SOFT_MAP_RULES:
            raise ValueError(f"data.soft_maps must be one of {list(SOFT_MAP_RULES)}, "
                             f"got {self.soft_maps!r}")


class LabelReader(Protocol):
    """Decodes one label file into a binary mask of the image's size."""

    def __call__(self, path: Path, shape: tuple[int, int],
                 options: LabelOptions) -> np.ndarray | None:
        """Return the H×W bool mask, or None where the file holds no such structure."""


@dataclass(frozen=True)
class Label:
    """One further binary target of a case, beside its primary ``mask``.

    Attributes:
        kind: label kind (``cup``); names the output folder ``masks_<kind>/`` and the
            index column ``mask_<kind>``.
        path: the file holding it (may be shared with other kinds, e.g. one JSON).
        reader: how to decode it; None = :class:`BinaryImage`. A reader may report the
            structure absent (None) where its format allows that, e.g. a cup drawn on
            only some images: the case then has an empty cell in that column.
    """

    kind: str
    path: Path
    reader: LabelReader | None = None


def _grey(path: Path) -> np.ndarray:
    """H×W uint8 grey values; an RGB file is accepted only if its three channels agree."""
    arr = read_image_any(path)
    if arr.ndim == 3:
        if np.ptp(arr[..., :3].astype(np.int16), axis=2).any():
            raise LabelFormatError(f"{path}: expected a grey label map, got colour pixels")
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        raise LabelFormatError(f"{path}: expected an 8-bit label map, got {arr.dtype}")
    return arr


def _warn_levels(path: Path, grey: np.ndarray, levels: tuple[int, ...], what: str) -> None:
    stray = np.setdiff1d(np.unique(grey), levels)
    if stray.size:
        log.warning("%s: %s has grey values %s besides %s", path, what,
                    stray[:8].tolist(), list(levels))


@dataclass(frozen=True)
class BinaryImage:
    """A binary label image (see :func:`samlora.data.io.read_mask`)."""

    def __call__(self, path: Path, shape: tuple[int, int], options: LabelOptions) -> np.ndarray:
        return read_mask(path)


#: PIL modes holding colours (a palette maps its indices to colours): tested per channel.
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA")


def _pil_mode(path: Path) -> str | None:
    """The PIL mode from the file header; None where PIL cannot open it (``.gz``, ``.mat``)."""
    try:
        with Image.open(path) as im:
            return im.mode
    except (OSError, SyntaxError, ValueError):
        return None


@dataclass(frozen=True)
class AnyChannel:
    """A label drawn in one colour on black (IDRiD draws its disc in pure red, 255/0/0).

    - colour (RGB) files: foreground where any channel is ≥ 128, so pure red counts although
      its grey value is 76;
    - palette files: decoded through the palette to RGB first, then as colour files (their
      indices 0/1, or the palette's grey value 76 for red, would otherwise find nothing);
    - grey (and 1-bit) files: foreground where the value is > 0. A red drawing saved as grey
      is 76 (0.299 · 255), a green one 150, a blue one 29, so any fixed threshold above 29
      loses some of them; IDRiD's masks are lossless TIFFs, so there is no compression
      noise for > 0 to pick up.
    """

    def __call__(self, path: Path, shape: tuple[int, int], options: LabelOptions) -> np.ndarray:
        if _pil_mode(path) in _COLOUR_MODES:
            return read_image(path).max(axis=2) >= 128
        arr = read_image_any(path)
        if arr.ndim == 3:
            return arr[..., :3].max(axis=2) >= 128 if arr.shape[2] >= 3 else arr[..., 0] > 0
        return arr > 0


@dataclass(frozen=True)
class SoftMap:
    """Multi-expert soft map (0/64/128/191/255) binarised by ``options.soft_maps``."""

    def __call__(self, path: Path, shape: tuple[int, int], options: LabelOptions) -> np.ndarray:
        grey = _grey(path)
        _warn_levels(path, grey, SOFT_MAP_LEVELS, "soft map")
        return grey >= 128 if options.soft_maps == "majority" else grey > 0


@dataclass(frozen=True)
class OneMap:
    """One map for disc and cup: 0 cup, 128 rim, 255 background (REFUGE convention).

    Attributes:
        kind: ``disc`` (every value below 255, cup included) or ``cup`` (value 0).
    """

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in ("disc", "cup"):
            raise ValueError(f"OneMap kind must be 'disc' or 'cup', got {self.kind!r}")

    def __call__(self, path: Path, shape: tuple[int, int], options: LabelOptions) -> np.ndarray:
        grey = _grey(path)
        _warn_levels(path, grey, (0, 128, 255), "disc/cup map")
        return grey < 255 if self.kind == "disc" else grey == 0


def _check_declared_size(path: Path, data: dict, shape: tuple[int, int]) -> None:
    """labelme files record the image size; a different size means the wrong image."""
    h, w = data.get("imageHeight"), data.get("imageWidth")
    if isinstance(h, int) and isinstance(w, int) and (h, w) != tuple(shape):
        raise SizeMismatchError(f"{path}: polygons drawn on a {w}×{h} (w×h) image, but the "
                                f"case's image is {shape[1]}×{shape[0]}")


@dataclass(frozen=True)
class LabelmePolygons:
    """labelme-style JSON (``shapes: [{label, points: [[x, y], ...], shape_type}]``).

    Attributes:
        names: shape labels (compared case-insensitively) whose polygons form the mask.
        optional: True where some files lack this structure (then None is returned);
            False makes a file without it an error.
    """

    names: tuple[str, ...]
    optional: bool = False

    def __call__(self, path: Path, shape: tuple[int, int],
                 options: LabelOptions) -> np.ndarray | None:
        try:
            data = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LabelFormatError(f"{path}: not a valid JSON file ({exc})") from exc
        shapes = data.get("shapes") if isinstance(data, dict) else None
        if not isinstance(shapes, list):
            raise LabelFormatError(f"{path}: no 'shapes' list (expected labelme JSON)")
        _check_declared_size(path, data, shape)
        wanted = {n.lower() for n in self.names}
        polys = []
        for i, s in enumerate(shapes):
            label = str(s.get("label", "")).strip().lower() if isinstance(s, dict) else ""
            if label not in wanted:
                continue
            kind = s.get("shape_type") or "polygon"
            if kind != "polygon":
                raise LabelFormatError(f"{path}: shape {i} ({label!r}) is a {kind!r}, "
                                       "only polygons are supported")
            polys.append(s.get("points"))
        if not polys:
            if self.optional:
                return None
            found = sorted({str(s.get("label")) for s in shapes if isinstance(s, dict)})
            raise LabelFormatError(f"{path}: no polygon labelled {' or '.join(self.names)} "
                                   f"(labels found: {found})")
        try:
            return rasterise_polygons(polys, shape, f"{path} ({'/'.join(self.names)})")
        except ValueError as exc:
            raise LabelFormatError(str(exc)) from exc


@dataclass(frozen=True)
class ContourText:
    """A closed contour as text: whitespace-separated ``x y`` numbers, one vertex per pair."""

    def __call__(self, path: Path, shape: tuple[int, int], options: LabelOptions) -> np.ndarray:
        words = Path(path).read_text().replace(",", " ").split()
        try:
            values = np.array([float(w) for w in words])
        except ValueError as exc:
            raise LabelFormatError(f"{path}: contour holds a non-number ({exc})") from exc
        if values.size % 2:
            raise LabelFormatError(f"{path}: odd number of coordinates ({values.size}); "
                                   "expected x y pairs")
        try:
            return rasterise_polygons([values.reshape(-1, 2)], shape, str(path))
        except ValueError as exc:
            raise LabelFormatError(str(exc)) from exc


@dataclass(frozen=True)
class MatMap:
    """A 2-D label map in a ``.mat`` file (read with :func:`scipy.io.loadmat`).

    Attributes:
        variable: the variable holding the map.
        values: label values that make up this target (e.g. disc = rim and cup values).
        crop_width: centre-crop a map that has its image's height but is wider (some
            copies of ORIGA ship such maps); the crop is logged with both widths. Any other
            size difference stays an error.
    """

    variable: str
    values: tuple[int, ...]
    crop_width: bool = False

    def __call__(self, path: Path, shape: tuple[int, int], options: LabelOptions) -> np.ndarray:
        try:
            data = scipy.io.loadmat(path)
        except (ValueError, TypeError, OSError, IndexError, NotImplementedError) as exc:
            raise LabelFormatError(f"{path}: not a readable .mat file ({exc})") from exc
        if self.variable not in data:
            found = sorted(k for k in data if not k.startswith("__"))
            raise LabelFormatError(f"{path}: no variable {self.variable!r} (found {found})")
        arr = np.asarray(data[self.variable])
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
            raise LabelFormatError(f"{path}: variable {self.variable!r} is not a 2-D numeric "
                                   f"map (shape {arr.shape}, {arr.dtype})")
        if self.crop_width:
            arr = _centre_crop_width(path, arr, shape)
        return np.isin(arr, self.values)


def _centre_crop_width(path: Path, arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``arr`` cut to ``shape``'s width, equally from both sides (the extra pixel of an odd
    difference from the right), where only its width exceeds the image's."""
    (h, w), (img_h, img_w) = arr.shape, tuple(shape)
    if h != img_h or w <= img_w:
        return arr
    left = (w - img_w) // 2
    log.info("%s: label map is %d px wide, its image %d px: centre-cropped to the image "
             "(%d px off the left, %d off the right)", path, w, img_w, left, w - img_w - left)
    return arr[:, left:left + img_w]


def decode_label(path: Path, reader: LabelReader | None, shape: tuple[int, int],
                 options: LabelOptions) -> np.ndarray | None:
    """Decode one label file with ``reader`` (None: :class:`BinaryImage`).

    Returns:
        H×W bool mask, or None where an optional structure is absent.
    """
    return (reader or BinaryImage())(Path(path), tuple(shape), options)


def describe_reader(reader: LabelReader | None) -> str:
    """Short text naming a reader and its settings (for ``dataset.json``)."""
    return repr(reader or BinaryImage())
