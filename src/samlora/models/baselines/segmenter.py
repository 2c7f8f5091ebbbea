"""The baseline segmenter: a library network behind the same interface as SamSegmenter.

Images in (``B×3×S×S``, float 0..255), ``B×1×S×S`` logits out. Each network's output is
reduced to one binary logit map at the input size:

- U-Net and DeepLabV3+ (smp) already predict one ``S×S`` logit map.
- SegFormer predicts one logit map at ``S/4``; it is upsampled bilinearly.
- Mask2Former predicts, per query ``q``, class logits over (background, foreground,
  no-object) and a mask logit map at ``S/4``. As in its own semantic inference, the class
  probabilities (softmax, no-object dropped) weight the sigmoid masks summed over queries:
  ``s_c(x) = Σ_q p_q(c)·σ(m_q(x))`` for c ∈ {background, foreground}. The binary logit is
  the log-ratio ``log(s_fg + ε) − log(s_bg + ε)`` (so ``σ(logit) = s_fg / (s_fg + s_bg)``),
  upsampled bilinearly to ``S×S``. The network is trained through this map with the
  method's loss, not with Mask2Former's set-matching loss.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from samlora.models.baselines.nets import build_net, get_arch
from samlora.models.registry import register_family

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, 0..1 scale
IMAGENET_STD = (0.229, 0.224, 0.225)
EPS = 1e-6  # keeps the Mask2Former log-ratio finite
MODES = ("train", "freeze")

#: parameter-name prefixes (under ``net.``) of each kind's encoder and final head
ENCODER_PREFIX = {"unet": "net.encoder.", "deeplabv3plus": "net.encoder.",
                  "segformer": "net.segformer.",
                  "mask2former": "net.model.pixel_level_module.encoder."}
HEAD_PREFIXES = {"unet": ("net.segmentation_head.",),
                 "deeplabv3plus": ("net.segmentation_head.",),
                 "segformer": ("net.decode_head.classifier.",),
                 "mask2former": ("net.class_predictor.",
                                 "net.model.transformer_module.decoder.mask_predictor.")}


class BaselineSegmenter(nn.Module):
    """A baseline network with ImageNet normalisation and a one-map logit output.

    Attributes:
        net: the library module.
        kind: ``unet``, ``deeplabv3plus``, ``segformer`` or ``mask2former``.
        img_size: the input side ``S`` in px.
    """

    def __init__(self, net: nn.Module, kind: str, img_size: int) -> None:
        super().__init__()
        self.net, self.kind, self.img_size = net, kind, int(img_size)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

    def param_group(self, name: str) -> str:
        """``encoder``, ``decoder`` or ``head``: where parameter ``name`` sits."""
        if name.startswith(HEAD_PREFIXES[self.kind]):
            return "head"
        if name.startswith(ENCODER_PREFIX[self.kind]):
            return "encoder"
        return "decoder"

    def _mask2former_logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(pixel_values=x)
        cls = out.class_queries_logits.softmax(dim=-1)[..., :2]  # B×Q×2 (bg, fg)
        masks = out.masks_queries_logits.sigmoid()  # B×Q×h×w
        sem = torch.einsum("bqc,bqhw->bchw", cls, masks)  # B×2×h×w
        return (torch.log(sem[:, 1:2] + EPS) - torch.log(sem[:, 0:1] + EPS))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Segment a batch of images.

        Args:
            images: ``B×3×S×S`` RGB, float in 0..255, ``S = img_size``.

        Returns:
            ``B×1×S×S`` logits.
        """
        s = self.img_size
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (s, s):
            raise ValueError(f"expected B×3×{s}×{s} images, got {tuple(images.shape)}")
        x = (images.float() - self.pixel_mean) / self.pixel_std
        if self.kind == "mask2former":
            logits = self._mask2former_logits(x)
        elif self.kind == "segformer":
            logits = self.net(pixel_values=x).logits
        else:
            logits = self.net(x)
        if logits.shape[-2:] != (s, s):
            logits = F.interpolate(logits, size=(s, s), mode="bilinear", align_corners=False)
        return logits


def set_trainable(model: BaselineSegmenter, train_encoder: bool, train_decoder: bool) -> None:
    """Train or freeze the encoder and the rest (decoder and head) of a baseline."""
    for name, p in model.named_parameters():
        p.requires_grad = train_encoder if model.param_group(name) == "encoder" else train_decoder


@register_family("baseline")
def build_baseline(method_cfg: Mapping, backbone_cfg: Mapping, models_dir: Path | None = None,
                   pretrained: bool = True) -> BaselineSegmenter:
    """Build a baseline method's model (same signature as every family builder).

    Args:
        method_cfg: ``methods.<name>``: ``lora`` and ``adapter`` must be null; ``encoder``
            and ``decoder`` are ``train`` (default) or ``freeze``.
        backbone_cfg: ``backbones.<id>``: ``arch`` (a key of ``nets.ARCHS``), ``img_size``
            and ``pretrained`` (null = random weights, or the weight source).
        models_dir: unused (baseline weights live in the Hugging Face cache or a folder).
        pretrained: False builds with random weights whatever the config says.

    Returns:
        The :class:`BaselineSegmenter`, in train mode.
    """
    del models_dir
    for key in ("lora", "adapter"):
        if method_cfg.get(key):
            raise ValueError(f"method {key} is not supported on baseline backbones "
                             f"({backbone_cfg.get('arch')}); set it to null")
    encoder, decoder = method_cfg.get("encoder", "train"), method_cfg.get("decoder", "train")
    if encoder not in MODES or decoder not in MODES:
        raise ValueError(f"method encoder/decoder must be one of {MODES}, got "
                         f"{encoder!r}/{decoder!r}")
    arch, img_size = str(backbone_cfg["arch"]), int(backbone_cfg["img_size"])
    a = get_arch(arch)
    if img_size % a.stride:
        raise ValueError(f"backbone {arch}: img_size must be a multiple of {a.stride}, "
                         f"got {img_size}")
    source = backbone_cfg.get("pretrained") if pretrained else None
    net = build_net(arch, source, where=f"backbone {arch}")
    log.info("baseline %s at %d px (%s weights)", arch, img_size, source or "random")
    model = BaselineSegmenter(net, a.kind, img_size)
    set_trainable(model, encoder == "train", decoder == "train")
    return model.train()
