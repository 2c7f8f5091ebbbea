"""Each paper's training augmentation as a torchvision.transforms.v2 pipeline.

``train.augment.pipeline`` picks one:

- ``samlora`` (default): our seeded flips and rot90 on the arrays
  (:class:`samlora.data.datasets.SegmentationDataset`; ``hflip``, ``vflip``, ``rot90``).
- ``topolora_ref``: TopoLoRA-SAM's code (``seglab/data/transforms.py``, Albumentations):
  random scale 0.8–1.2, pad to and randomly crop ``crop`` px (384; PadIfNeeded fills 0),
  horizontal and vertical flips (p 0.5), ColorJitter (brightness, contrast, saturation and
  hue 0.2, p 0.2). The model then resizes the crop to its input size.
- ``sam2lora_ref``: SAM2LoRA's code (``train.py``, torchvision): flips (p 0.5), then with p
  0.5 all of RandomPerspective(0.1, p 0.6), RandomResizedCrop(1000²), RandomRotation(8°),
  RandomAffine(8°, translate 0.2, scale 0.2–0.8); then with p 0.5 all of ColorJitter
  (brightness 0.1, hue 0.02), GaussianBlur(3, σ 0.1–0.4), RandomAdjustSharpness(1.2).

Image, label and FOV go through one call (``tv_tensors.Image`` and ``tv_tensors.Mask``),
so they move together; masks are resampled by nearest neighbour (SAM2LoRA's code
interpolates its mask with the image and re-binarises it at mid-range, a difference of at
most a pixel along edges). A pipeline's random draws come from torch's generator seeded,
inside :func:`torch.random.fork_rng`, by the sample's own seed: a pure function of (run
seed, epoch, item), so a resumed run and any worker count draw alike.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

PIPELINES = ("samlora", "topolora_ref", "sam2lora_ref")
#: TopoLoRA-SAM's training crop (px).
TOPOLORA_CROP = 384


class RandomScale(v2.Transform):
    """Resize every input by one factor drawn uniformly from ``scale`` (Albumentations'
    RandomScale: the aspect ratio is kept; masks by nearest neighbour)."""

    def __init__(self, scale: tuple[float, float] = (0.8, 1.2)) -> None:
        super().__init__()
        self.scale = (float(scale[0]), float(scale[1]))

    def make_params(self, flat_inputs: list) -> dict:
        h, w = v2.query_size(flat_inputs)
        f = float(torch.empty(1).uniform_(*self.scale))
        return {"size": [max(1, round(h * f)), max(1, round(w * f))]}

    def transform(self, inpt, params: dict):
        return TF.resize(inpt, params["size"], antialias=True)


def build(name: str, crop: int = TOPOLORA_CROP) -> v2.Compose | None:
    """The pipeline ``name`` (None for ``samlora``, which the dataset applies itself).

    Raises:
        ValueError: an unknown name (naming ``train.augment.pipeline``).
    """
    if name not in PIPELINES:
        raise ValueError(f"train.augment.pipeline: {name!r} is not one of {list(PIPELINES)}")
    if name == "samlora":
        return None
    if name == "topolora_ref":
        return v2.Compose([
            RandomScale((0.8, 1.2)),
            v2.RandomCrop(int(crop), pad_if_needed=True, fill=0),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomVerticalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.2, 0.2)], p=0.2),
        ])
    return v2.Compose([
        v2.RandomHorizontalFlip(0.5),
        v2.RandomVerticalFlip(0.5),
        v2.RandomApply([
            v2.RandomPerspective(distortion_scale=0.1, p=0.6),
            v2.RandomResizedCrop(size=(1000, 1000)),
            v2.RandomRotation(degrees=8),
            v2.RandomAffine(degrees=8, translate=(0.2, 0.2), scale=(0.2, 0.8)),
        ], p=0.5),
        v2.RandomApply([
            v2.ColorJitter(brightness=0.1, hue=0.02),
            v2.GaussianBlur(kernel_size=(3, 3), sigma=(0.1, 0.4)),
            v2.RandomAdjustSharpness(sharpness_factor=1.2, p=1.0),
        ], p=0.5),
    ])


def apply(pipeline: v2.Compose, image: np.ndarray, mask: np.ndarray, fov: np.ndarray,
          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``pipeline`` on one sample with torch's generator seeded by ``seed``.

    Args:
        image: H×W×3 uint8; mask, fov: H×W bool.
        seed: the sample's seed (any int; reduced mod 2⁶³).

    Returns:
        The augmented (image H'×W'×3 uint8, mask, fov H'×W' bool), contiguous.
    """
    img = tv_tensors.Image(torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1))
    masks = tv_tensors.Mask(torch.from_numpy(np.stack([mask, fov]).astype(np.uint8)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % (2 ** 63))
        img, masks = pipeline(img, masks)
    out = img.permute(1, 2, 0).contiguous().numpy()
    m = masks.numpy().astype(bool)
    return out, np.ascontiguousarray(m[0]), np.ascontiguousarray(m[1])
