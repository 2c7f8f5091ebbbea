"""Prompt-free SAM segmenter: frozen SAM + LoRA + spatial adapter + trainable mask decoder."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import nn

from samlora.models.adapter import SpatialAdapter
from samlora.models.lora import apply_lora
from samlora.models.registry import register_family

log = logging.getLogger(__name__)

DEFAULT_MODELS_DIR = Path("models/pretrained")
DECODER_MODES = ("train", "freeze")
ADAPTER_PREFIX = "adapter."
DECODER_PREFIX = "sam.mask_decoder."


def _is_lora(name: str) -> bool:
    """peft names LoRA factors ``<module>.lora_A.<adapter>.weight`` (and ``lora_B``)."""
    return ".lora_" in name


class SamSegmenter(nn.Module):
    """Binary segmentation with SAM and no prompts: image in, one logit map out.

    Attributes:
        sam: the segment_anything model (LoRA layers injected in place, if any).
        adapter: the spatial adapter on the image embedding, or None.
        img_size: the input side ``S`` in px the model expects.
    """

    def __init__(self, sam: Sam, adapter: SpatialAdapter | None = None) -> None:
        super().__init__()
        self.sam = sam
        self.adapter = adapter
        self.img_size = int(sam.image_encoder.img_size)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise, encode and adapt.

        Args:
            images: ``B×3×S×S`` RGB, float in 0..255 (uint8 is accepted).

        Returns:
            ``B×C×h×w`` image embedding (``h = w = S / 16``).
        """
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.img_size,) * 2:
            raise ValueError(f"expected B×3×{self.img_size}×{self.img_size} images, "
                             f"got {tuple(images.shape)}")
        x = (images.float() - self.sam.pixel_mean) / self.sam.pixel_std
        emb = self.sam.image_encoder(x)
        return self.adapter(emb) if self.adapter is not None else emb

    def decode(self, emb: torch.Tensor) -> torch.Tensor:
        """Prompt-free mask decoding, one image at a time (as ``Sam.forward`` loops).

        Args:
            emb: ``B×C×h×w`` image embeddings.

        Returns:
            ``B×1×4h×4w`` low-resolution mask logits.
        """
        pe = self.sam.prompt_encoder
        sparse, dense = pe(points=None, boxes=None, masks=None)  # 1×0×C, 1×C×h×w
        image_pe = pe.get_dense_pe()  # 1×C×h×w
        lows = [
            self.sam.mask_decoder(
                image_embeddings=e.unsqueeze(0),
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )[0]
            for e in emb
        ]
        return torch.cat(lows, dim=0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Segment a batch of images.

        Args:
            images: ``B×3×S×S`` RGB, float in 0..255, ``S = img_size``.

        Returns:
            ``B×1×S×S`` logits (bilinear upsampling of the decoder's low-res logits).
        """
        low = self.decode(self.embed(images))
        return F.interpolate(low, size=(self.img_size, self.img_size), mode="bilinear",
                             align_corners=False)


def set_trainable(model: SamSegmenter, train_decoder: bool) -> None:
    """Freeze everything except the LoRA factors, the adapter and (optionally) the decoder."""
    for name, p in model.named_parameters():
        p.requires_grad = (
            _is_lora(name)
            or name.startswith(ADAPTER_PREFIX)
            or (train_decoder and name.startswith(DECODER_PREFIX))
        )


def _get(cfg: Mapping, key: str, default: Any = None) -> Any:
    return cfg[key] if key in cfg else default


@register_family("sam")
def build_segmenter(method_cfg: Mapping, backbone_cfg: Mapping, models_dir: Path | None = None,
                    pretrained: bool = True) -> SamSegmenter:
    """Build a method's model on its backbone.

    Order matters: official weights are loaded into the plain ``Sam`` first, then LoRA is
    injected (it renames the wrapped layers' weights), then the adapter is added and the
    freezing policy applied.

    Args:
        method_cfg: ``methods.<name>`` from params.yaml: ``lora`` (null or r/alpha/dropout/
            targets), ``adapter`` (null or ``hidden``) and ``decoder`` (``train``|``freeze``).
        backbone_cfg: ``backbones.<id>``: ``family`` (sam), ``arch``, ``img_size`` and
            ``checkpoint`` (null = random weights, or file/url/bytes/sha256).
        models_dir: where official checkpoints live (default ``models/pretrained``).
        pretrained: False skips the checkpoint (random weights; parameter counts, tests).

    Returns:
        The :class:`SamSegmenter`, in train mode.
    """
    from samlora.models.checkpoints import fetch_checkpoint, load_sam_weights
    from samlora.models.sam import build_sam

    family = _get(backbone_cfg, "family", "sam")
    if family != "sam":
        raise ValueError(f"backbone family {family!r} is not supported (only 'sam')")
    decoder = _get(method_cfg, "decoder", "train")
    if decoder not in DECODER_MODES:
        raise ValueError(f"method decoder must be one of {DECODER_MODES}, got {decoder!r}")
    arch, img_size = str(backbone_cfg["arch"]), int(backbone_cfg["img_size"])
    sam = build_sam(arch, img_size)
    spec = _get(backbone_cfg, "checkpoint")
    if spec and pretrained:
        path = fetch_checkpoint(spec, Path(models_dir) if models_dir else DEFAULT_MODELS_DIR)
        load_sam_weights(sam, path)  # fetch_checkpoint has verified size and SHA-256
    else:
        log.info("SAM %s at %d px with random weights (%s)", arch, img_size,
                 "no checkpoint configured" if not spec else "pretrained=False")
    lora_cfg = _get(method_cfg, "lora")
    if lora_cfg:
        apply_lora(sam, lora_cfg)
    adapter_cfg = _get(method_cfg, "adapter")
    adapter = None
    if adapter_cfg:
        adapter = SpatialAdapter(sam.prompt_encoder.embed_dim, int(adapter_cfg["hidden"]))
    model = SamSegmenter(sam, adapter)
    set_trainable(model, train_decoder=decoder == "train")
    return model.train()


def _adapter_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: b for n, b in model.named_buffers() if n.startswith(ADAPTER_PREFIX)}


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights a run trains: parameters with ``requires_grad`` plus the adapter's
    BatchNorm buffers (running mean/var, batch count), as detached copies.

    Returns:
        ``{name: tensor}`` with names as in ``model.state_dict()``.
    """
    sd = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    sd.update({n: b.detach().clone() for n, b in _adapter_buffers(model).items()})
    return sd


def load_trainable_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Load weights saved by :func:`trainable_state_dict`; names must match exactly.

    Raises:
        RuntimeError: listing missing and unexpected names, or mismatched shapes.
    """
    expected = {n: p for n, p in model.named_parameters() if p.requires_grad}
    expected.update(_adapter_buffers(model))
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise RuntimeError(f"trained weights do not match the model: missing {missing[:20]}"
                           f"{' …' if len(missing) > 20 else ''} ({len(missing)}), unexpected "
                           f"{unexpected[:20]}{' …' if len(unexpected) > 20 else ''} "
                           f"({len(unexpected)})")
    bad = [f"{n}: {tuple(sd[n].shape)} vs {tuple(t.shape)}" for n, t in expected.items()
           if tuple(sd[n].shape) != tuple(t.shape)]
    if bad:
        raise RuntimeError(f"trained weights have the wrong shapes: {bad[:20]}")
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(sd[name].to(device=target.device, dtype=target.dtype))


def count_parameters(model: SamSegmenter) -> dict[str, float]:
    """Parameter counts of a segmenter.

    Returns:
        ``total`` (all parameters, LoRA and adapter included), ``trainable``,
        ``trainable_pct`` (100 · trainable / total), and the trainable share by group:
        ``lora``, ``adapter``, ``decoder`` (0 when the decoder is frozen).
    """
    total = trainable = lora = adapter = decoder = 0
    for name, p in model.named_parameters():
        n = p.numel()
        total += n
        if not p.requires_grad:
            continue
        trainable += n
        if _is_lora(name):
            lora += n
        elif name.startswith(ADAPTER_PREFIX):
            adapter += n
        elif name.startswith(DECODER_PREFIX):
            decoder += n
    return {"total": total, "trainable": trainable,
            "trainable_pct": 100.0 * trainable / total if total else 0.0,
            "lora": lora, "adapter": adapter, "decoder": decoder}
