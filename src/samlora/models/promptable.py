"""The forward interface shared by the SAM and SAM 2 segmenters."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from samlora.models.prompts import Prompts


class PromptableSegmenter(nn.Module):
    """Base class: ``embed`` the images, ``decode_with_iou`` with optional prompts, upsample.

    Subclasses set ``img_size`` and implement ``embed(images)`` (any feature object) and
    ``decode_with_iou(features, prompts)`` returning ``B×1×h×w`` low-resolution logits and
    ``B×1`` predicted IoU.
    """

    img_size: int

    def embed(self, images: torch.Tensor) -> Any:
        raise NotImplementedError

    def decode_with_iou(self, features: Any, prompts: Prompts | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def embed_encoded(self, encoded: Any) -> Any:
        """Features from a stored encoder output (segmenters with an ``encode`` step)."""
        raise NotImplementedError(f"{type(self).__name__} cannot take encoder outputs")

    def forward_with_iou(self, images: torch.Tensor, prompts: Prompts | None = None,
                         encoded: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment a batch of images and return the decoder's predicted IoU too.

        Args:
            images: ``B×3×S×S`` RGB, float in 0..255, ``S = img_size``.
            prompts: batched prompts (:mod:`samlora.models.prompts`) or None (prompt-free).
            encoded: the images' encoder outputs when already computed (the embedding
                cache, or one encoding shared by several prompt modes); None = encode.

        Returns:
            ``B×1×S×S`` logits (bilinear upsampling of the decoder's low-res logits) and
            ``B×1`` predicted IoU.
        """
        features = self.embed(images) if encoded is None else self.embed_encoded(encoded)
        low, iou = self.decode_with_iou(features, prompts)
        logits = F.interpolate(low.float(), size=(self.img_size, self.img_size),
                               mode="bilinear", align_corners=False)
        return logits, iou

    def forward(self, images: torch.Tensor, prompts: Prompts | None = None,
                encoded: Any = None) -> torch.Tensor:
        """Segment a batch of images (``B×3×S×S``, 0..255); ``B×1×S×S`` logits out.

        Prompt-free unless ``prompts`` is given; ``encoded`` as :meth:`forward_with_iou`.
        """
        return self.forward_with_iou(images, prompts, encoded)[0]


#: ``multimask``: the decoder's single-mask output (ours), or ``first``: multimask_output=True
#: and the first of its three masks (and IoU predictions), as SAM2LoRA's code trains and
#: evaluates.
MULTIMASK = ("single", "first")


def check_multimask(value: str) -> str:
    """``value`` if it is one of :data:`MULTIMASK`; ValueError naming ``multimask``."""
    if value not in MULTIMASK:
        raise ValueError(f"method multimask: {value!r} is not one of {list(MULTIMASK)}")
    return value
