"""Model-input geometry: resize the longest side to S and pad to S×S, and the inverse.

SAM takes a square S×S input. Images keep their aspect ratio: the longest side becomes S
and the bottom/right is zero-padded. :func:`unresize` maps an S×S prediction back to the
native H×W grid (crop the padding, bilinear resize).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def resized_hw(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) after scaling so that the longest side equals ``size`` (aspect ratio kept)."""
    scale = size / max(height, width)
    h = size if height >= width else max(1, round(height * scale))
    w = size if width >= height else max(1, round(width * scale))
    return h, w


def _resize(t: torch.Tensor, hw: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a C×H×W float tensor to C×h×w (antialiased when shrinking with bilinear)."""
    if tuple(t.shape[-2:]) == hw:
        return t
    kwargs: dict[str, Any] = {}
    if mode == "bilinear":
        kwargs = {"align_corners": False, "antialias": True}
    return F.interpolate(t[None], size=hw, mode=mode, **kwargs)[0]


def _pad(t: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad a C×h×w tensor at the bottom and right to C×size×size."""
    return F.pad(t, (0, size - t.shape[-1], 0, size - t.shape[-2]))


def _resize_mask(mask: np.ndarray, hw: tuple[int, int], size: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
    t = (_resize(t, hw, "nearest-exact") >= 0.5).float()  # re-binarise
    return _pad(t, size)


def _check_inputs(image: np.ndarray, mask: np.ndarray | None,
                  fov: np.ndarray | None) -> tuple[int, int]:
    """(H, W) of an H×W×C image whose mask and FOV (if any) are H×W; ValueError otherwise."""
    if image.ndim != 3:
        raise ValueError(f"expected an H×W×C image, got shape {image.shape}")
    H, W = image.shape[:2]
    for name, m in (("mask", mask), ("fov", fov)):
        if m is not None and m.shape != (H, W):
            raise ValueError(f"{name} shape {m.shape} differs from the image's {(H, W)}")
    return H, W


def resize_pad(image: np.ndarray, mask: np.ndarray | None, fov: np.ndarray | None,
               size: int) -> tuple[dict[str, torch.Tensor | None], dict[str, tuple[int, int]]]:
    """Resize so the longest side is ``size``, then pad bottom/right with zeros to size×size.

    Args:
        image: H×W×C uint8 (C = 3).
        mask: H×W bool label, or None.
        fov: H×W bool field of view, or None.
        size: side S of the square output.

    Returns:
        (tensors, meta): tensors ``image`` float32 C×S×S in 0..255 (bilinear), ``mask``
        and ``fov`` float32 1×S×S in {0, 1} (nearest) or None; meta
        ``{"orig_hw": (H, W), "resized_hw": (h, w)}``.
    """
    H, W = _check_inputs(image, mask, fov)
    hw = resized_hw(H, W, size)
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    img = _pad(_resize(img, hw, "bilinear").clamp_(0.0, 255.0), size)
    tensors = {"image": img,
               "mask": None if mask is None else _resize_mask(mask, hw, size),
               "fov": None if fov is None else _resize_mask(fov, hw, size)}
    return tensors, {"orig_hw": (int(H), int(W)), "resized_hw": hw}


def unresize(prob: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """Map an S×S model output back to the native grid of its image.

    Args:
        prob: S×S float map (e.g. probabilities).
        meta: from :func:`resize_pad` (``orig_hw``, ``resized_hw``).

    Returns:
        H×W float32 map: padding cropped, bilinear resize to the native size.
    """
    if prob.ndim != 2:
        raise ValueError(f"expected an S×S map, got shape {prob.shape}")
    H, W = (int(v) for v in meta["orig_hw"])
    h, w = (int(v) for v in meta["resized_hw"])
    if h > prob.shape[0] or w > prob.shape[1]:
        raise ValueError(f"resized size {(h, w)} exceeds the map's {prob.shape}")
    t = torch.from_numpy(np.ascontiguousarray(prob[:h, :w], dtype=np.float32))[None]
    return _resize(t, (H, W), "bilinear")[0].numpy()


def stretch(image: np.ndarray, mask: np.ndarray | None, fov: np.ndarray | None, pre: int,
            size: int) -> tuple[dict[str, torch.Tensor | None], dict[str, tuple[int, int]]]:
    """Resize to ``pre``×``pre`` without keeping the aspect ratio, then to ``size``×``size``.

    TopoLoRA-SAM's code feeds its models this way (Albumentations ``Resize(384, 384)``:
    OpenCV's bilinear without antialiasing for the image, OpenCV's nearest for masks; SAM
    then upsamples to 1024). Arguments and returns as :func:`resize_pad`; ``resized_hw``
    is (size, size), so :func:`unresize` maps the output back to the native grid unchanged.
    """
    H, W = _check_inputs(image, mask, fov)
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    if (H, W) != (pre, pre):  # OpenCV INTER_LINEAR: half-pixel centres, no antialiasing
        img = F.interpolate(img[None], size=(pre, pre), mode="bilinear",
                            align_corners=False)[0]
    img = _resize(img, (size, size), "bilinear")

    def binary(m: np.ndarray | None) -> torch.Tensor | None:
        if m is None:
            return None
        t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None]
        t = F.interpolate(t[None], size=(pre, pre), mode="nearest")[0]  # OpenCV INTER_NEAREST
        return (_resize(t, (size, size), "nearest-exact") >= 0.5).float()

    tensors = {"image": img.clamp_(0.0, 255.0), "mask": binary(mask), "fov": binary(fov)}
    return tensors, {"orig_hw": (int(H), int(W)), "resized_hw": (int(size), int(size))}
