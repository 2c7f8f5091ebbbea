"""Shape checks and FOV masking shared by the per-image metric modules of samlora."""

from __future__ import annotations

import numpy as np


def check_shapes(a: np.ndarray, b: np.ndarray, fov: np.ndarray | None) -> None:
    """Raise ValueError unless ``a``, ``b`` (and ``fov``) are H×W arrays of one shape."""
    if a.ndim != 2 or a.shape != b.shape or (fov is not None and fov.shape != a.shape):
        shapes = [a.shape, b.shape] + ([fov.shape] if fov is not None else [])
        raise ValueError(f"expected H×W arrays of one shape, got {shapes}")


def in_fov(a: np.ndarray, fov: np.ndarray | None) -> np.ndarray:
    """The values of ``a`` inside ``fov`` as a flat array (all of ``a`` when fov is None)."""
    return a.ravel() if fov is None else a[fov.astype(bool)]


def masked(m: np.ndarray, fov: np.ndarray | None) -> np.ndarray:
    """``m`` as bool with every pixel outside ``fov`` set to False (H×W kept)."""
    m = np.asarray(m).astype(bool)
    return m if fov is None else m & fov.astype(bool)
