"""How an image becomes a model input: a method's ``geometry`` block.

- ``resize: letterbox`` (default, ours): the longest side to the model size, the rest
  zero-padded (:func:`samlora.data.transforms.resize_pad`); no pixel is distorted.
- ``resize: stretch``: resize to ``size``² without keeping the aspect ratio, then to the
  model size (:func:`samlora.data.transforms.stretch`): TopoLoRA-SAM's code, which resizes
  every test and validation image to 384² (512² for Kvasir-SEG and SL-SSDD); SAM then
  upsamples to 1024, and its baselines run at that size.

``size`` (px) is the stretch target, and ``size_by_dataset`` maps dataset ids to their own;
null = the model size. For a baseline backbone, a resolved size also becomes the model's
input size (:func:`model_backbone`), as the reference code builds its baselines at the
dataset's size. Predictions are mapped back to the native grid either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from samlora.data.transforms import resize_pad, stretch

RESIZES = ("letterbox", "stretch")
KEYS = ("resize", "size", "size_by_dataset")


@dataclass(frozen=True)
class Geometry:
    """The resolved geometry of one dataset: ``resize`` and the stretch ``size`` (or None)."""

    resize: str = "letterbox"
    size: int | None = None

    @property
    def tag(self) -> str:
        """A short name of the geometry for cache keys: ``lb`` or ``st<size>x``."""
        return "lb" if self.resize == "letterbox" else f"st{self.size or 0}x"

    def apply(self, image: np.ndarray, mask: np.ndarray | None, fov: np.ndarray | None,
              model_size: int) -> tuple[dict[str, torch.Tensor | None], dict[str, Any]]:
        """Tensors at ``model_size``² and the meta :func:`~samlora.data.transforms.unresize`
        needs."""
        if self.resize == "letterbox":
            return resize_pad(image, mask, fov, model_size)
        return stretch(image, mask, fov, self.size or model_size, model_size)


def geometry_for(cfg: Mapping[str, Any] | None, dataset: str | None) -> Geometry:
    """The :class:`Geometry` of ``dataset`` under a method's ``geometry`` block (None =
    letterbox).

    Raises:
        ValueError: an unknown key or resize, or a size that is not a positive integer
            (naming ``geometry.<key>``).
    """
    if not cfg:
        return Geometry()
    if unknown := sorted(set(cfg) - set(KEYS)):
        raise ValueError(f"geometry: unknown key(s) {unknown}; known: {list(KEYS)}")
    resize = cfg.get("resize", "letterbox")
    if resize not in RESIZES:
        raise ValueError(f"geometry.resize: {resize!r} is not one of {list(RESIZES)}")
    by_dataset = dict(cfg.get("size_by_dataset") or {})
    size = by_dataset.get(dataset, cfg.get("size")) if dataset is not None else cfg.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ValueError(f"geometry.size: expected a positive integer (px), got {size!r}")
    return Geometry(resize, size)


def model_backbone(method_cfg: Mapping[str, Any], backbone_cfg: Mapping[str, Any],
                   train_sets: tuple[str, ...]) -> dict[str, Any]:
    """``backbone_cfg`` with a baseline's input size set to the geometry's size for the
    run's train set (the size a one-dataset run resolves; a union uses ``geometry.size``).
    SAM-family backbones keep their size: the stretch happens before their own resize."""
    out = dict(backbone_cfg)
    if out.get("family") != "baseline":
        return out
    geo = geometry_for(method_cfg.get("geometry"), train_sets[0] if len(train_sets) == 1
                       else None)
    if geo.size is not None:
        out["img_size"] = int(geo.size)
    return out
