"""Readers for array formats beside images: NIfTI (nibabel) and MATLAB ``.mat`` (scipy.io).

Both return ``(array, meta)`` with ``meta["spacing"]`` always set (mm per voxel for
NIfTI from its header zooms; 1.0 per axis where the format carries none), so distance
metrics can use physical units. A file that cannot be decoded raises
:class:`~samlora.data.errors.ImageReadError` naming it.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from samlora.data.errors import ImageReadError

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
MAT_SUFFIXES = (".mat",)


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """True if the name ends in ``.nii`` or ``.nii.gz``."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def is_mat(path: str | os.PathLike[str]) -> bool:
    """True if the name ends in ``.mat``."""
    return Path(path).name.lower().endswith(MAT_SUFFIXES)


def read_nifti(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a NIfTI-1/2 file fully.

    The array keeps nibabel's axis order (axis 0 = the file's i axis); trailing axes of
    length 1 are dropped, so a 2-D image stored as H×W×1 comes back as H×W.

    Returns:
        (array, meta): meta has ``spacing`` (one zoom per returned axis) and ``affine``
        (4×4 list).

    Raises:
        FileNotFoundError: no such file.
        ImageReadError: not a NIfTI file, or truncated.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NIfTI file")
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)  # reads every voxel: truncation surfaces here
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise ImageReadError(f"{path}: not a readable NIfTI file ({exc})") from exc
    zooms = tuple(float(z) for z in img.header.get_zooms())
    while data.ndim > 2 and data.shape[-1] == 1:
        data = data[..., 0]
    spacing = (zooms + (1.0,) * data.ndim)[: data.ndim]
    return data, {"spacing": spacing, "affine": np.asarray(img.affine).tolist()}


def read_mat(path: str | os.PathLike[str], variable: str | None = None
             ) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one numeric variable of a MATLAB ``.mat`` file (v4–v7.2).

    Args:
        path: the file.
        variable: the variable to read; None = the only numeric array in the file.

    Returns:
        (array, meta) with ``meta["spacing"]`` 1.0 per axis and ``meta["variable"]``.

    Raises:
        FileNotFoundError: no such file.
        ImageReadError: unreadable, no such variable, or (``variable`` None) not exactly
            one numeric array; the message names the file and the variables found.
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .mat file")
    try:
        data = scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, IndexError, NotImplementedError) as exc:
        raise ImageReadError(f"{path}: not a readable .mat file ({exc})") from exc
    arrays = {k: v for k, v in data.items() if not k.startswith("__")
              and isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.number)}
    if variable is None:
        if len(arrays) != 1:
            raise ImageReadError(f"{path}: expected one numeric variable, found "
                                 f"{sorted(arrays)}; name the variable to read")
        variable = next(iter(arrays))
    if variable not in arrays:
        raise ImageReadError(f"{path}: no numeric variable {variable!r} (found {sorted(arrays)})")
    arr = np.asarray(arrays[variable])
    return arr, {"spacing": (1.0,) * arr.ndim, "variable": variable}


def read_array(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a NIfTI or ``.mat`` file by its suffix (see :func:`read_nifti`, :func:`read_mat`).

    Raises:
        ValueError: the suffix is neither.
    """
    if is_nifti(path):
        return read_nifti(path)
    if is_mat(path):
        return read_mat(path)
    raise ValueError(f"{path}: not a NIfTI (.nii, .nii.gz) or MATLAB (.mat) file")


def as_plane(arr: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """A 2-D (H×W) or H×W×3 array from an array file, else ImageReadError naming it."""
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4)):
        return arr[..., :3] if arr.ndim == 3 else arr
    raise ImageReadError(f"{path}: holds a {arr.ndim}-D array of shape {arr.shape}; "
                         "expected one 2-D image (H×W or H×W×3)")
