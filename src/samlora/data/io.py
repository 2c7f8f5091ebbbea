"""Image and mask readers (.tif .gif .jpg .png .ppm .bmp, also gzipped; NIfTI and .mat through
:mod:`samlora.data.arrays`) and idempotent PNG writes.

Every reader decodes the whole file, so a corrupt or truncated file fails here with an
:class:`~samlora.data.errors.ImageReadError` naming it, not later inside a model.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from samlora.data.arrays import as_plane, is_mat, is_nifti, read_array
from samlora.data.errors import ImageReadError
from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

#: Suffixes the readers accept (a trailing ``.gz`` is decompressed first).
IMAGE_SUFFIXES = (".tif", ".tiff", ".gif", ".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm",
                  ".bmp")

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error,
                  Image.DecompressionBombError)


def _open_bytes(path: Path) -> io.BytesIO:
    """The file's bytes (gunzipped for ``.gz``) in memory."""
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImageReadError(f"{path}: corrupt gzip stream ({exc})") from exc
    return io.BytesIO(data)


def _load(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode ``path`` (first frame for GIF/TIFF stacks).

    Raises:
        FileNotFoundError: no such file.
        ImageReadError: not an image, corrupt or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    buf = _open_bytes(path)
    try:
        with Image.open(buf) as im:
            im.load()  # force a full decode: truncation surfaces here, not lazily
            return im.copy()
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not a readable image (corrupt, empty or unknown "
                             f"format); replace it with the file from the dataset's official release and run the step again") from exc
    except _DECODE_ERRORS as exc:
        raise ImageReadError(f"{path}: corrupt or truncated image ({exc}); replace it with the file from the dataset's official release and run the step again") from exc


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale 16-bit (or bool) arrays to uint8; pass uint8 through."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        return (np.clip(arr, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)  # float in 0..1


def read_image_any(path: str | os.PathLike[str]) -> np.ndarray:
    """The image as stored, fully decoded: H×W (grey/palette index/bool) or H×W×C.

    Palette images keep their indices; use :func:`read_mask` or :func:`read_image` to
    convert. NIfTI and ``.mat`` files give their 2-D array as stored.
    """
    if is_nifti(path) or is_mat(path):
        return as_plane(read_array(path)[0], path)
    with _load(path) as im:
        return np.asarray(im).copy()


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image as RGB.

    Grey, palette and 1-bit images are expanded to three channels; alpha is dropped;
    16-bit data is scaled to 8 bit.

    Returns:
        H×W×3 uint8 array.
    """
    if is_nifti(path) or is_mat(path):
        arr = _to_uint8(read_image_any(path))
        return arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=2)
    with _load(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            grey = _to_uint8(np.asarray(im))
            return np.repeat(grey[..., None], 3, axis=2)
        return np.asarray(im.convert("RGB")).copy()


def read_mask(path: str | os.PathLike[str], threshold: int = 128) -> np.ndarray:
    """Read a binary label as H×W bool.

    1-bit images are used as they are. Palette images (e.g. DRIVE's ``2nd_manual`` GIFs,
    indices 0/1 with a near-black/near-white palette) go through their palette to grey;
    grey and RGB images are compared with ``threshold`` on the grey value (never ``> 0``,
    which would turn JPEG noise or a palette's near-black into foreground). A grey mask
    whose only values are 0 and 1 is read as a 0/1 label map.

    Args:
        path: the label file.
        threshold: grey value (0..255) at or above which a pixel is foreground.

    Returns:
        H×W bool array.
    """
    if is_nifti(path) or is_mat(path):
        grey = read_image_any(path)
        if grey.ndim == 3:
            raise ImageReadError(f"{path}: a label must be 2-D, got shape {grey.shape}")
        return _binarise(_to_uint8(grey) if grey.max(initial=0) > 255 else grey, threshold,
                         path)
    with _load(path) as im:
        if im.mode == "1":
            return np.asarray(im).astype(bool)
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            grey = np.asarray(im)
            if grey.max(initial=0) > 255:
                grey = _to_uint8(grey)
        else:
            grey = np.asarray(im.convert("L"))
    return _binarise(grey, threshold, path)


def _binarise(grey: np.ndarray, threshold: int, path: str | os.PathLike[str]) -> np.ndarray:
    """0/1 label maps by value >= 1, anything else by ``threshold``."""
    if grey.max(initial=0) == 1:
        log.debug("%s: 0/1 label values, read as a label map", path)
        return grey >= 1
    return grey >= threshold


def encode_png(arr: np.ndarray, compress_level: int = 1) -> bytes:
    """Lossless PNG bytes of an H×W (grey) or H×W×3 (RGB) uint8 array.

    Level 1 is ~5× faster than zlib's default 6 for ~15 % larger fundus images.
    """
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise ValueError(f"expected H×W or H×W×3 uint8, got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def png_matches(path: str | os.PathLike[str], arr: np.ndarray) -> bool:
    """True if ``path`` is a readable image whose pixels equal ``arr`` (dtype and shape too)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with Image.open(path) as im:
            im.load()
            old = np.asarray(im)
    except _DECODE_ERRORS:
        return False
    return old.dtype == arr.dtype and old.shape == arr.shape and np.array_equal(old, arr)


def write_png_if_changed(path: str | os.PathLike[str], arr: np.ndarray) -> bool:
    """Write ``arr`` as PNG to ``path`` atomically, unless the file already holds these pixels.

    Comparing decoded pixels (not bytes) keeps files untouched across Pillow/zlib versions
    whose encoders differ.

    Returns:
        True if the file was (re)written, False if it already matched (mtime kept).
    """
    if png_matches(path, arr):
        return False
    write_png(path, arr)
    return True


def write_png(path: str | os.PathLike[str], arr: np.ndarray) -> None:
    """Write an H×W or H×W×3 uint8 array as a lossless PNG, atomically."""
    data = encode_png(arr)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_bytes_if_changed(path: str | os.PathLike[str], data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless the file holds exactly these bytes.

    Returns:
        True if written, False if the file was already identical.
    """
    path = Path(path)
    if has_bytes(path, data):
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True


def has_bytes(path: str | os.PathLike[str], data: bytes) -> bool:
    """True if ``path`` is a file holding exactly ``data``."""
    path = Path(path)
    return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """H×W bool -> H×W uint8 with values 0/255."""
    return mask.astype(np.uint8) * 255
