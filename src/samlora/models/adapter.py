"""The spatial conv adapter applied to SAM's image embedding (TopoLoRA-SAM)."""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

ADAPTER_VARIANTS = ("code", "text")
ADAPTER_INITS = ("zero", "default")


class SpatialAdapter(nn.Module):
    """Residual depthwise-separable conv block: ``out = z + f(z)``.

    Two structures for ``f`` (``adapter.variant``):

    * ``"code"`` (default; TopoLoRA-SAM's reference code): depthwise 3×3 conv → 1×1 conv
      (channels→hidden) → BatchNorm2d → GELU → 1×1 conv (hidden→channels); all convs
      without bias. Submodules ``depthwise, expand, norm, act, project``. At
      ``channels=hidden=256`` it has 133,888 parameters.
    * ``"text"`` (the paper's formula ``z + Conv1×1(ReLU(DWConv3×3(z)))``): depthwise 3×3
      conv (channels→channels, groups=channels) → ReLU → 1×1 conv (channels→channels),
      both with PyTorch's default bias. Submodules ``depthwise, act, project``. ``hidden``
      is unused (kept only as a record). At ``channels=256`` it has 68,352 parameters
      (2,304 + 256 + 65,536 + 256).

    Two initialisations (``adapter.init``):

    * ``"zero"`` (default): the last conv (``project``) has its weight set to zero (and its
      bias, where it has one), so the adapter starts as the identity and training departs
      from the frozen embedding.
    * ``"default"`` (Seglab's code): PyTorch's default init of every conv, nothing zeroed;
      the adapter does not start as the identity.

    Args:
        channels: channels ``C`` of the image embedding (SAM's prompt embedding width).
        hidden: width of the bottleneck (``"code"`` variant only).
        variant: ``"code"`` or ``"text"``, see above.
        init: ``"zero"`` or ``"default"``, see above.

    Raises:
        ValueError: non-positive sizes, or a ``variant``/``init`` not listed above.
    """

    def __init__(self, channels: int, hidden: int, variant: str = "code",
                 init: str = "zero") -> None:
        super().__init__()
        if channels < 1 or hidden < 1:
            raise ValueError(f"channels and hidden must be positive, got {channels}, {hidden}")
        if variant not in ADAPTER_VARIANTS:
            raise ValueError(f"adapter.variant must be one of {ADAPTER_VARIANTS}, "
                             f"got {variant!r}")
        if init not in ADAPTER_INITS:
            raise ValueError(f"adapter.init must be one of {ADAPTER_INITS}, got {init!r}")
        self.channels, self.hidden = channels, hidden
        self.variant, self.init = variant, init
        if variant == "code":
            self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels,
                                       bias=False)
            self.expand = nn.Conv2d(channels, hidden, 1, bias=False)
            self.norm = nn.BatchNorm2d(hidden)
            self.act = nn.GELU()
            self.project = nn.Conv2d(hidden, channels, 1, bias=False)
        else:
            self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
            self.act = nn.ReLU()
            self.project = nn.Conv2d(channels, channels, 1)
        if init == "zero":
            nn.init.zeros_(self.project.weight)
            if self.project.bias is not None:
                nn.init.zeros_(self.project.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Adapt an image embedding.

        Args:
            z: ``B×C×h×w`` image embedding.

        Returns:
            ``B×C×h×w``, ``z`` plus the learnt residual.
        """
        if self.variant == "code":
            return z + self.project(self.act(self.norm(self.expand(self.depthwise(z)))))
        return z + self.project(self.act(self.depthwise(z)))

    def extra_repr(self) -> str:
        hidden = f", hidden={self.hidden}" if self.variant == "code" else ""
        return f"channels={self.channels}{hidden}, variant={self.variant}, init={self.init}"
