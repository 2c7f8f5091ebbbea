"""Boundary and surface-distance metrics of binary masks: HD95, ASSD, Boundary IoU, BF score.

Masks are first restricted to the FOV (pixels outside it become background; ``fov=None``
means the whole image). Distances are Euclidean, in pixels; the ``*_mm`` variants of
:mod:`samlora.evaluation.metrics` multiply them by an isotropic pixel size.

Surface (contour) of a mask M: ``M ∧ ¬erode(M)`` with the 4-connected cross as structuring
element and background beyond the image border, so foreground on the image edge is contour
(the same edges as ``monai.metrics.utils.get_mask_edges`` without spacing).

Edge cases, never raised:

- HD95 and ASSD are 0.0 when both masks are empty, and the image diagonal √(H²+W²) (the
  largest distance the image can hold, so a missed or hallucinated structure is penalised
  rather than skipped) when exactly one is empty.
- Boundary IoU and BF score are 1.0 when both masks are empty and 0.0 when exactly one is.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from samlora.evaluation._fov import check_shapes, masked

_CROSS = ndimage.generate_binary_structure(2, 1)


def _bbox(m: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def contour(m: np.ndarray) -> np.ndarray:
    """Inner contour of bool mask ``m``: foreground pixels with a 4-neighbour in background."""
    m = np.asarray(m, dtype=bool)
    return m & ~ndimage.binary_erosion(m, _CROSS, border_value=0)


def surface_distances(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None,
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances (px) from each contour pixel of pred to gt's contour, and of gt to pred's.

    The masks are cropped to the bounding box of their union first: every contour pixel
    lies in it, so the distances are those of the full image.

    Returns:
        ``(d_pred_to_gt, d_gt_to_pred)``, or None when either mask is empty in the FOV.
    """
    check_shapes(pred, gt, fov)
    p, g = masked(pred, fov), masked(gt, fov)
    if not p.any() or not g.any():
        return None
    box = _bbox(p | g)
    cp, cg = contour(p[box]), contour(g[box])
    d_to_g = ndimage.distance_transform_edt(~cg)
    d_to_p = ndimage.distance_transform_edt(~cp)
    return d_to_g[cp], d_to_p[cg]


def empty_distance(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None) -> float:
    """HD95/ASSD when a mask is empty: 0.0 if both are, else the image diagonal √(H²+W²)."""
    both_empty = not masked(pred, fov).any() and not masked(gt, fov).any()
    return 0.0 if both_empty else float(math.hypot(*pred.shape))


def hd95_from(d: tuple[np.ndarray, np.ndarray]) -> float:
    """Symmetric 95th-percentile Hausdorff distance from :func:`surface_distances`' output:
    the larger of the two directed 95th percentiles (linear interpolation, numpy's default)."""
    return float(max(np.percentile(d[0], 95), np.percentile(d[1], 95)))


def assd_from(d: tuple[np.ndarray, np.ndarray]) -> float:
    """Average symmetric surface distance: the mean over both directed distance sets pooled."""
    return float(np.concatenate(d).mean())


def hd95(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the contours, in pixels.

    Returns:
        HD95 ≥ 0; 0.0 when both masks are empty, √(H²+W²) when exactly one is.
    """
    d = surface_distances(pred, gt, fov)
    return empty_distance(pred, gt, fov) if d is None else hd95_from(d)


def assd(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Average symmetric surface distance between the contours, in pixels.

    Returns:
        ASSD ≥ 0; 0.0 when both masks are empty, √(H²+W²) when exactly one is.
    """
    d = surface_distances(pred, gt, fov)
    return empty_distance(pred, gt, fov) if d is None else assd_from(d)


def boundary_band(m: np.ndarray, width: int) -> np.ndarray:
    """Cheng et al.'s mask boundary: ``m`` minus its erosion by ``width`` iterations of the
    3×3 square, background beyond the image border (so: the pixels of ``m`` within
    chessboard distance ``width`` of background)."""
    m = np.asarray(m, dtype=bool)
    if not m.any():
        return m.copy()
    padded = np.pad(m, 1)
    depth = ndimage.distance_transform_cdt(padded, metric="chessboard")[1:-1, 1:-1]
    return m & (depth <= width)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None,
                 dilation_ratio: float = 0.02) -> float:
    """Boundary IoU (Cheng et al., CVPR 2021) of the masks inside the FOV.

    With d = max(1, round(dilation_ratio · √(H²+W²))) and B_d(M) from
    :func:`boundary_band`: |B_d(P) ∩ B_d(G)| / |B_d(P) ∪ B_d(G)|.

    Args:
        pred: H×W bool predicted mask.
        gt: H×W bool ground-truth mask.
        fov: H×W bool field of view, or None for the whole image.
        dilation_ratio: band width as a fraction of the image diagonal (paper: 0.02).

    Returns:
        Boundary IoU in [0, 1]; 1.0 when both masks are empty, 0.0 when exactly one is.
    """
    check_shapes(pred, gt, fov)
    p, g = masked(pred, fov), masked(gt, fov)
    if not p.any() and not g.any():
        return 1.0
    if not p.any() or not g.any():
        return 0.0
    width = max(1, int(round(dilation_ratio * math.hypot(*p.shape))))
    bp, bg = boundary_band(p, width), boundary_band(g, width)
    return int(np.count_nonzero(bp & bg)) / int(np.count_nonzero(bp | bg))


def bfscore(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None,
            tolerance: float = 1.0) -> float:
    """Boundary F1 score of the contours with a distance tolerance (Csurka et al., 2013).

    Boundary precision is the fraction of pred's contour pixels within ``tolerance`` px
    (Euclidean, inclusive) of gt's contour; boundary recall the fraction of gt's contour
    pixels within ``tolerance`` of pred's; BF = 2PR/(P+R).

    Returns:
        BF in [0, 1]; 1.0 when both masks are empty, 0.0 when exactly one is or P+R = 0.
    """
    d = surface_distances(pred, gt, fov)
    if d is None:
        return 1.0 if empty_distance(pred, gt, fov) == 0.0 else 0.0
    return bfscore_from(d, tolerance)


def bfscore_from(d: tuple[np.ndarray, np.ndarray], tolerance: float = 1.0) -> float:
    """BF score from :func:`surface_distances`' output (both masks non-empty)."""
    prec = float(np.mean(d[0] <= tolerance))
    rec = float(np.mean(d[1] <= tolerance))
    return 0.0 if prec + rec == 0 else 2.0 * prec * rec / (prec + rec)
