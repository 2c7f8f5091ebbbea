"""Field-of-view masks for fundus images that ship none: threshold the red channel, clean up."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage
from skimage import measure, morphology

log = logging.getLogger(__name__)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected foreground component of an H×W bool mask."""
    labels, n = measure.label(mask, connectivity=2, return_num=True)
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def compute_fov(image: np.ndarray, red_threshold: float, radius: int) -> np.ndarray:
    """Estimate the circular field of view of a fundus photograph.

    Red channel scaled to 0..1 above ``red_threshold``, then a morphological opening and
    closing with a disk of ``radius`` px (removes specks outside, closes notches at the
    rim), hole filling (dark lesions or the fovea inside), and the largest component.

    Args:
        image: H×W×3 uint8 RGB image.
        red_threshold: red value in (0, 1) above which a pixel is inside.
        radius: disk radius in px of the clean-up; 0 skips opening and closing.

    Returns:
        H×W bool mask.
    """
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    if not 0.0 < red_threshold < 1.0:
        raise ValueError(f"red_threshold must lie in (0, 1), got {red_threshold}")
    red = image[..., 0].astype(np.float32) / 255.0
    fov = red > red_threshold
    if radius > 0:
        disk = morphology.disk(int(radius))
        fov = morphology.opening(fov, disk)
        fov = morphology.closing(fov, disk)
    fov = ndimage.binary_fill_holes(fov)
    fov = largest_component(fov)
    if not fov.any():
        log.warning("computed FOV is empty (red channel never above %.3f)", red_threshold)
    return fov.astype(bool)
