"""Polygon rasterisation for annotation formats that store outlines (JSON polygons, contours).

Points are given in image coordinates as the annotation tools write them: ``x`` = column,
``y`` = row, origin at the top-left pixel centre. :func:`skimage.draw.polygon` fills every
pixel whose centre lies inside or on the outline, so an axis-aligned rectangle with integer
corners (x0, y0)–(x1, y1) covers (x1 − x0 + 1)·(y1 − y0 + 1) pixels; parts outside the image
are clipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.draw import polygon as draw_polygon


def as_points(points: Sequence[Sequence[float]] | np.ndarray, what: str) -> np.ndarray:
    """``points`` as an N×2 float array of (x, y), N ≥ 3.

    Args:
        points: vertices, (x, y) each.
        what: names the source in the error (e.g. the file and the shape label).

    Raises:
        ValueError: not N×2 numbers, fewer than 3 vertices, or a non-finite value.
    """
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: polygon vertices are not numbers ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what}: expected a list of (x, y) vertices, got shape {arr.shape}")
    if len(arr) < 3:
        raise ValueError(f"{what}: a polygon needs at least 3 vertices, got {len(arr)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: polygon vertices contain nan or inf")
    return arr


def rasterise_polygon(points: Sequence[Sequence[float]] | np.ndarray, shape: tuple[int, int],
                      what: str = "polygon") -> np.ndarray:
    """Fill one closed polygon.

    Args:
        points: N×2 vertices (x = column, y = row) in pixels; the outline closes itself.
        shape: (H, W) of the output mask.
        what: names the source in error messages.

    Returns:
        H×W bool mask, True inside or on the outline (clipped to the image).
    """
    arr = as_points(points, what)
    mask = np.zeros(tuple(int(s) for s in shape), dtype=bool)
    rows, cols = draw_polygon(arr[:, 1], arr[:, 0], shape=mask.shape)
    mask[rows, cols] = True
    return mask


def rasterise_polygons(polygons: Sequence[np.ndarray], shape: tuple[int, int],
                       what: str = "polygon") -> np.ndarray:
    """Union of several filled polygons (e.g. a structure drawn in more than one piece).

    Returns:
        H×W bool mask.
    """
    mask = np.zeros(tuple(int(s) for s in shape), dtype=bool)
    for poly in polygons:
        mask |= rasterise_polygon(poly, shape, what)
    return mask
