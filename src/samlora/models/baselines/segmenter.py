"""The baseline segmenter: a library network behind the same interface as SamSegmenter.

Images in (``B×3×S×S``, float 0..255), ``B×1×S×S`` logits out. Each network's output is
reduced to one binary logit map at the input size:

- U-Net and DeepLabV3+ (smp) already predict one ``S×S`` logit map.
- SegFormer predicts one logit map at ``S/4``; it is upsampled bilinearly.
- Mask2Former predicts, per query ``q``, class logits and a mask logit map ``m_q`` at
  ``S/4``; the backbone's ``reduction`` turns them into one logit map, upsampled bilinearly
  to ``S×S``:

  - ``logratio`` (default; 2 labels: background, foreground, + no-object). As in
    Mask2Former's own semantic inference, the class probabilities (softmax, no-object
    dropped) weight the sigmoid masks summed over queries: ``s_c(x) = Σ_q p_q(c)·σ(m_q(x))``
    for c ∈ {background, foreground}. The logit is ``log(s_fg + ε) − log(s_bg + ε)`` (so
    ``σ(logit) = s_fg / (s_fg + s_bg)``).
  - ``noisy_or`` (TopoLoRA-SAM's Seglab code; 1 label: foreground, + no-object). Each query
    claims a pixel with ``q_q = p_q·σ(m_q)``, ``p_q`` the softmax foreground probability;
    the pixel is foreground unless no query claims it: ``P = 1 − Π_q (1 − q_q)``, computed
    as ``log Π = Σ_q log1p(−q_q)`` (see :func:`noisy_or_logits`), the logit ``log P/(1−P)``.

  The network is trained through this map with the method's loss, not with Mask2Former's
  set-matching loss.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from samlora.models.baselines.nets import build_net, check_reduction, get_arch
from samlora.models.hub_weights import hub_source, verify_fetched
from samlora.models.registry import register_family

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, 0..1 scale
IMAGENET_STD = (0.229, 0.224, 0.225)
EPS = 1e-6  # keeps the Mask2Former log-ratio finite
#: noisy-OR bounds (Seglab's 1e-6): the probability is clamped to [ε, 1 − ε], so the logit
#: lies within ±log((1 − ε)/ε) ≈ ±13.82
NOISY_OR_EPS = 1e-6
_Q_MAX = 1.0 - 2.0 ** -24  # the largest float32 below 1: keeps log1p(−q) finite
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


def noisy_or_logits(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                    eps: float = NOISY_OR_EPS) -> torch.Tensor:
    """Mask2Former's query outputs as one foreground logit map by a noisy-OR.

    ``P = 1 − Π_q (1 − p_q·σ(m_q))`` with ``p_q = softmax(class_logits_q)[0]``, in float32:
    ``log Π`` is ``Σ_q log1p(−p_q·σ(m_q))``, each ``p_q·σ(m_q)`` capped below 1 (a cap that
    only acts where ``P`` exceeds ``1 − ε`` anyway). ``P`` is clamped to ``[ε, 1 − ε]`` by
    clamping ``log(1 − P)`` to ``[log ε, log(1 − ε)]``, so both bounds are exact.

    Args:
        class_logits: ``B×Q×(L+1)``; class 0 is the foreground, the last no-object.
        mask_logits: ``B×Q×h×w``.
        eps: the probability bound ε.

    Returns:
        ``B×1×h×w`` logits ``log P − log(1 − P)``.
    """
    p = class_logits.float().softmax(dim=-1)[..., 0, None, None]  # B×Q×1×1
    q = (p * mask_logits.float().sigmoid()).clamp(0.0, _Q_MAX)
    log_none = torch.log1p(-q).sum(dim=1, keepdim=True)  # log Π_q (1 − q_q) = log(1 − P)
    log_none = log_none.clamp(math.log(eps), math.log1p(-eps))
    return torch.log(-torch.expm1(log_none)) - log_none


class BaselineSegmenter(nn.Module):
    """A baseline network with ImageNet normalisation and a one-map logit output.

    Attributes:
        net: the library module.
        kind: ``unet``, ``deeplabv3plus``, ``segformer`` or ``mask2former``.
        img_size: the input side ``S`` in px.
        reduction: Mask2Former's reduction, ``logratio`` or ``noisy_or`` (module docstring).
    """

    def __init__(self, net: nn.Module, kind: str, img_size: int,
                 reduction: str = "logratio") -> None:
        super().__init__()
        self.net, self.kind, self.img_size = net, kind, int(img_size)
        self.reduction = check_reduction(kind, reduction)
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
        labels = out.class_queries_logits.shape[-1] - 1
        want = 1 if self.reduction == "noisy_or" else 2
        if labels != want:
            raise ValueError(f"the {self.reduction} reduction needs Mask2Former with "
                             f"{want} label(s), the network has {labels}")
        if self.reduction == "noisy_or":
            return noisy_or_logits(out.class_queries_logits, out.masks_queries_logits)
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
        backbone_cfg: ``backbones.<id>``: ``arch`` (a key of ``nets.ARCHS``), ``img_size``,
            ``pretrained`` (null = random weights, or the weight source) and, for
            Mask2Former, ``reduction`` (``logratio``, the default, or ``noisy_or``).
        models_dir: where ``fetch_checkpoint`` put the Hub weights
            (``<models_dir>/hub/<repo>@<revision>/``, verified before use); None reads
            ``pretrained`` as the libraries do (the Hugging Face cache, or a folder).
        pretrained: False builds with random weights whatever the config says.

    Returns:
        The :class:`BaselineSegmenter`, in train mode.
    """
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
    reduction = check_reduction(a.kind, backbone_cfg.get("reduction", "logratio"),
                                arch)
    if img_size % a.stride:
        raise ValueError(f"backbone {arch}: img_size must be a multiple of {a.stride}, "
                         f"got {img_size}")
    source = backbone_cfg.get("pretrained") if pretrained else None
    hub = hub_source(backbone_cfg, f"backbone {arch}") if source and models_dir else None
    if hub is not None:
        source = str(verify_fetched(hub, Path(models_dir)))
    net = build_net(arch, source, where=f"backbone {arch}", reduction=reduction)
    log.info("baseline %s at %d px (%s weights%s)", arch, img_size, source or "random",
             f", {reduction} reduction" if a.kind == "mask2former" else "")
    model = BaselineSegmenter(net, a.kind, img_size, reduction)
    set_trainable(model, encoder == "train", decoder == "train")
    return model.train()
