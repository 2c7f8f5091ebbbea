"""SAM segmenter: frozen SAM + LoRA + spatial adapter + trainable mask decoder; prompt-free by
default, optionally with point/box prompts (see :mod:`samlora.models.prompts`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from segment_anything.modeling import Sam
from torch import nn

from samlora.models.adapter import SpatialAdapter
from samlora.models.lora import apply_lora
from samlora.models.promptable import PromptableSegmenter, check_multimask
from samlora.models.prompts import Prompts, check_prompts, image_prompts, prompts_to
from samlora.models.registry import register_family

log = logging.getLogger(__name__)

DEFAULT_MODELS_DIR = Path("models/pretrained")
DECODER_MODES = ("train", "freeze")
ADAPTER_PREFIX = "adapter."
DECODER_PREFIX = "sam.mask_decoder."


def _is_lora(name: str) -> bool:
    """peft names LoRA factors ``<module>.lora_A.<adapter>.weight`` (and ``lora_B``)."""
    return ".lora_" in name


class SamSegmenter(PromptableSegmenter):
    """Binary segmentation with SAM: image (and optional prompts) in, one logit map out.

    Attributes:
        sam: the segment_anything model (LoRA layers injected in place, if any).
        adapter: the spatial adapter on the image embedding, or None.
        img_size: the input side ``S`` in px the model expects.
    """

    #: parameter-name prefix of the mask decoder (freezing policy, parameter counts).
    decoder_prefix = DECODER_PREFIX

    def __init__(self, sam: Sam, adapter: SpatialAdapter | None = None,
                 multimask: str = "single") -> None:
        super().__init__()
        self.sam = sam
        self.adapter = adapter
        self.multimask = multimask
        self.img_size = int(sam.image_encoder.img_size)

    def image_encoder_module(self) -> nn.Module:
        """The image encoder (what :meth:`encode` runs; the embedding cache keys on it)."""
        return self.sam.image_encoder

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise and run the image encoder (no adapter).

        Args:
            images: ``B×3×S×S`` RGB, float in 0..255 (uint8 is accepted).

        Returns:
            ``B×C×h×w`` encoder output (``h = w = S / 16``; ``S / 4`` for LiteMedSAM).
        """
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.img_size,) * 2:
            raise ValueError(f"expected B×3×{self.img_size}×{self.img_size} images, "
                             f"got {tuple(images.shape)}")
        x = (images.float() - self.sam.pixel_mean) / self.sam.pixel_std
        return self.sam.image_encoder(x)

    def embed_encoded(self, encoded: torch.Tensor) -> torch.Tensor:
        """The image embedding from an encoder output: the adapter applied, if any."""
        return self.adapter(encoded) if self.adapter is not None else encoded

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise, encode and adapt (``B×C×h×w`` out; see :meth:`encode`)."""
        return self.embed_encoded(self.encode(images))

    def train(self, mode: bool = True) -> SamSegmenter:
        """Train mode, except BatchNorm layers whose weights are frozen (TinyViT's): they
        keep their pretrained statistics, so a frozen encoder computes the same function
        in training and prediction."""
        super().train(mode)
        if mode:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                        p.requires_grad for p in module.parameters()):
                    module.eval()
        return self

    def decode_with_iou(self, emb: torch.Tensor, prompts: Prompts | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask decoding one image at a time (as ``Sam.forward`` loops), with or without prompts.

        Args:
            emb: ``B×C×h×w`` image embeddings.
            prompts: the batched prompt dict of :mod:`samlora.models.prompts` (points in
                model-input px), or None for prompt-free decoding of every image.

        Returns:
            ``B×1×4h×4w`` low-resolution mask logits and the decoder's ``B×1`` predicted IoU.
        """
        pe = self.sam.prompt_encoder
        image_pe = pe.get_dense_pe()  # 1×C×h×w
        if prompts is not None:
            check_prompts(prompts, emb.shape[0])
            prompts = prompts_to(prompts, emb.device)
        free = pe(points=None, boxes=None, masks=None)  # 1×0×C, 1×C×h×w
        lows, ious = [], []
        for i, e in enumerate(emb):
            points, box = image_prompts(prompts, i)
            sparse, dense = free if points is None and box is None else \
                pe(points=points, boxes=box, masks=None)
            low, iou = self.sam.mask_decoder(
                image_embeddings=e.unsqueeze(0),
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=self.multimask == "first",
            )
            if self.multimask == "first":  # the first of the three masks
                low, iou = low[:, :1], iou[:, :1]
            lows.append(low)
            ious.append(iou)
        return torch.cat(lows, dim=0), torch.cat(ious, dim=0)

    def decode(self, emb: torch.Tensor, prompts: Prompts | None = None) -> torch.Tensor:
        """Low-resolution ``B×1×4h×4w`` mask logits of :meth:`decode_with_iou`."""
        return self.decode_with_iou(emb, prompts)[0]


def set_trainable(model: SamSegmenter, train_decoder: bool, train_encoder: bool = False) -> None:
    """Freeze everything except the LoRA factors, the adapter and, optionally, the decoder
    and the rest (image and prompt encoders: ``train_encoder`` is full fine-tuning)."""
    prefix = _decoder_prefix(model)
    for name, p in model.named_parameters():
        in_decoder = name.startswith(prefix)
        p.requires_grad = (
            _is_lora(name)
            or name.startswith(ADAPTER_PREFIX)
            or (train_decoder and in_decoder)
            or (train_encoder and not in_decoder)
        )


def _decoder_prefix(model: nn.Module) -> str:
    """Parameter-name prefix of the model's mask decoder (each segmenter class sets one)."""
    return getattr(model, "decoder_prefix", DECODER_PREFIX)


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
            targets), ``adapter`` (null or ``hidden`` plus optional ``variant`` code|text and
            ``init`` zero|default, see :class:`~samlora.models.adapter.SpatialAdapter`),
            ``decoder`` (``train``|``freeze``) and
            ``encoder`` (``freeze``, the default, or ``train``: the image and prompt
            encoders' own weights train too, i.e. full fine-tuning).
        backbone_cfg: ``backbones.<id>``: ``family`` (sam), ``arch``, ``img_size``,
            ``checkpoint`` (null = random weights, or file/url/bytes/sha256) and
            ``attention`` (``eager``, the default, ``sdpa`` or ``chunked``: :mod:`samlora.models.sdpa`).
        models_dir: where official checkpoints live (default ``models/pretrained``).
        pretrained: False skips the checkpoint (random weights; parameter counts, tests).

    Returns:
        The :class:`SamSegmenter`, in train mode.
    """
    from samlora.models.checkpoints import fetch_checkpoint, load_sam_weights
    from samlora.models.sam import build_sam
    from samlora.models.sdpa import MODES as ATTENTION_MODES
    from samlora.models.sdpa import use_chunked, use_sdpa

    family = _get(backbone_cfg, "family", "sam")
    if family != "sam":
        raise ValueError(f"backbone family {family!r} is not supported (only 'sam')")
    decoder = _get(method_cfg, "decoder", "train")
    encoder = _get(method_cfg, "encoder", "freeze")
    if decoder not in DECODER_MODES or encoder not in DECODER_MODES:
        raise ValueError(f"method decoder and encoder must be one of {DECODER_MODES}, got "
                         f"{decoder!r} and {encoder!r}")
    arch, img_size = str(backbone_cfg["arch"]), int(backbone_cfg["img_size"])
    sam = build_sam(arch, img_size)
    attention = str(_get(backbone_cfg, "attention", "eager"))
    if attention not in ATTENTION_MODES:
        raise ValueError(f"backbone {arch}: attention {attention!r} is not one of "
                         f"{list(ATTENTION_MODES)}")
    if attention == "sdpa":
        log.info("SAM %s: %d attention blocks through scaled_dot_product_attention", arch,
                 use_sdpa(sam))
    elif attention == "chunked":
        log.info("SAM %s: %d attention blocks in bands of query rows, recomputed in the "
                 "backward pass", arch, use_chunked(sam))
    spec = _get(backbone_cfg, "checkpoint")
    if spec and pretrained:
        path = fetch_checkpoint(spec, Path(models_dir) if models_dir else DEFAULT_MODELS_DIR)
        load_sam_weights(sam, path)  # fetch_checkpoint has verified size and SHA-256
    else:
        log.info("SAM %s at %d px with random weights (%s)", arch, img_size,
                 "no checkpoint configured" if not spec else "pretrained=False")
    lora_cfg = _get(method_cfg, "lora")
    if lora_cfg:
        apply_lora(sam, lora_cfg, family="litemedsam" if arch == "litemedsam" else "sam")
    if arch == "litemedsam":  # same function, faster on CPUs (samlora.models.tinyvit_speed)
        from samlora.models.tinyvit_speed import speed_up_tinyvit

        speed_up_tinyvit(sam.image_encoder)
    adapter_cfg = _get(method_cfg, "adapter")
    adapter = None
    if adapter_cfg:
        adapter = SpatialAdapter(sam.prompt_encoder.embed_dim, int(adapter_cfg["hidden"]),
                                 variant=str(adapter_cfg.get("variant", "code")),
                                 init=str(adapter_cfg.get("init", "zero")))
    multimask = check_multimask(str(method_cfg.get("multimask", "single")))
    model = SamSegmenter(sam, adapter, multimask)
    set_trainable(model, train_decoder=decoder == "train", train_encoder=encoder == "train")
    return model.train()


def _adapter_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Persistent buffers of every module that owns a trainable parameter: the BatchNorm
    running statistics of the adapter, or of a fully trained baseline network."""
    persistent = set(model.state_dict())
    out = {}
    for prefix, mod in model.named_modules():
        if any(p.requires_grad for p in mod.parameters(recurse=False)):
            out.update({n: b for n, b in mod.named_buffers(prefix=prefix, recurse=False)
                        if n in persistent})
    return out


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights a run trains: parameters with ``requires_grad`` plus the buffers of the
    modules that own them (BatchNorm running mean/var, batch count), as detached copies.

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


def count_parameters(model: nn.Module) -> dict[str, float]:
    """Parameter counts of a segmenter (SAM, SAM 2 or baseline).

    Returns:
        ``total`` (all parameters, LoRA and adapter included, plus ``unused``),
        ``trainable``, ``trainable_pct`` (100 · trainable / total), the trainable share by
        group: ``lora``, ``adapter``, ``encoder`` (the backbone's own encoder weights: full
        fine-tuning, baselines; for SAM the image and prompt encoders), ``decoder`` (0 when
        the decoder is frozen) and ``head`` (a baseline's final prediction layers; SAM's
        mask decoder is counted whole under ``decoder``), and ``unused``: parameters of the
        official model the segmenter does not hold (SAM 2's video-memory modules; 0 for
        SAM), so ``total`` is the release's figure.
    """
    unused = int(getattr(model, "unused_params", 0))
    total, trainable = unused, 0
    groups = dict.fromkeys(("lora", "adapter", "encoder", "decoder", "head"), 0)
    decoder_prefix = _decoder_prefix(model)
    group_of = getattr(model, "param_group", None)  # baselines name their own groups
    for name, p in model.named_parameters():
        n = p.numel()
        total += n
        if not p.requires_grad:
            continue
        trainable += n
        if _is_lora(name):
            groups["lora"] += n
        elif name.startswith(ADAPTER_PREFIX):
            groups["adapter"] += n
        elif group_of is not None:
            groups[group_of(name)] += n
        else:
            groups["decoder" if name.startswith(decoder_prefix) else "encoder"] += n
    return {"total": total, "trainable": trainable,
            "trainable_pct": 100.0 * trainable / total if total else 0.0,
            **groups, "unused": unused}
