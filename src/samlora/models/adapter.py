"""The spatial conv adapter applied to SAM's image embedding (TopoLoRA-SAM)."""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


class SpatialAdapter(nn.Module):
    """Residual depthwise-separable conv block: ``out = z + f(z)``.

    ``f`` is a depthwise 3×3 conv → 1×1 conv (channels→hidden) → BatchNorm2d → GELU →
    1×1 conv (hidden→channels); all convs without bias. The last conv starts at zero, so
    the adapter starts as the identity and training departs from the frozen embedding.
    At ``channels=hidden=256`` it has 133,888 parameters.

    Args:
        channels: channels ``C`` of the image embedding (SAM's prompt embedding width).
        hidden: width of the bottleneck.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        if channels < 1 or hidden < 1:
            raise ValueError(f"channels and hidden must be positive, got {channels}, {hidden}")
        self.channels, self.hidden = channels, hidden
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.expand = nn.Conv2d(channels, hidden, 1, bias=False)
        self.norm = nn.BatchNorm2d(hidden)
        self.act = nn.GELU()
        self.project = nn.Conv2d(hidden, channels, 1, bias=False)
        nn.init.zeros_(self.project.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Adapt an image embedding.

        Args:
            z: ``B×C×h×w`` image embedding.

        Returns:
            ``B×C×h×w``, ``z`` plus the learnt residual.
        """
        return z + self.project(self.act(self.norm(self.expand(self.depthwise(z)))))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}"
