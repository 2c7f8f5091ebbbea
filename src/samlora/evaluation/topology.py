"""Betti-number errors of binary masks: connected components (β0) and holes (β1).

Connectivity: foreground is 8-connected and background 4-connected (the dual pair, so a
1-pixel-wide diagonal vessel is one component and does not leak into the holes it bounds).
The mask is restricted to the FOV first (pixels outside it are background), and the image
is framed by background, so background touching the border is the outside, not a hole.
Both errors are 0 for two empty masks; no other edge case exists.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label

from samlora.evaluation._fov import check_shapes, masked


def betti_numbers(mask: np.ndarray) -> tuple[int, int]:
    """``(β0, β1)`` of bool H×W ``mask``: 8-connected components and 4-connected holes."""
    m = np.asarray(mask, dtype=bool)
    b0 = int(label(m, connectivity=2, return_num=True)[1])
    outside = int(label(~np.pad(m, 1), connectivity=1, return_num=True)[1])
    return b0, outside - 1


def betti0_error(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """|β0(pred) − β0(gt)|: difference in the number of connected components (FOV-masked)."""
    check_shapes(pred, gt, fov)
    return float(abs(betti_numbers(masked(pred, fov))[0] - betti_numbers(masked(gt, fov))[0]))


def betti1_error(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """|β1(pred) − β1(gt)|: difference in the number of holes (loops), FOV-masked."""
    check_shapes(pred, gt, fov)
    return float(abs(betti_numbers(masked(pred, fov))[1] - betti_numbers(masked(gt, fov))[1]))
