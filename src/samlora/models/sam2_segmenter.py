"""Prompt-free (or prompted) SAM 2 segmenter: Hiera encoder + high-res features + mask decoder.

Single-image segmentation needs only part of ``SAM2Base``: the image encoder (Hiera trunk +
FPN neck), the prompt encoder, the mask decoder and the ``no_mem_embed`` token that SAM 2
adds to the image embedding of a frame without memory (as ``SAM2ImagePredictor`` does). The
video-memory modules (memory attention, memory encoder, object-pointer projections, …) are
not held at all, so LoRA can never reach them and they cost no memory. Their parameter count
is kept (:attr:`Sam2Segmenter.unused_params`) so tables can report the release's total.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from samlora.models.adapter import SpatialAdapter
from samlora.models.checkpoints import fetch_checkpoint
from samlora.models.lora import apply_lora
from samlora.models.promptable import PromptableSegmenter, check_multimask
from samlora.models.prompts import Prompts, check_prompts, image_prompts
from samlora.models.registry import register_family
from samlora.models.sam2_build import build_sam2_base, load_sam2_weights
from samlora.models.segmenter import DECODER_MODES, DEFAULT_MODELS_DIR, set_trainable

log = logging.getLogger(__name__)

# sam2's image transform: ToTensor (0..1) then ImageNet normalisation; here on 0..255 input.
PIXEL_MEAN = tuple(255.0 * m for m in (0.485, 0.456, 0.406))
PIXEL_STD = tuple(255.0 * s for s in (0.229, 0.224, 0.225))
KEPT = ("image_encoder", "sam_prompt_encoder", "sam_mask_decoder", "no_mem_embed")

Features = tuple[torch.Tensor, list[torch.Tensor]]


class Sam2Segmenter(PromptableSegmenter):
    """Binary segmentation with SAM 2: image in, one logit map out.

    Module names are the official ones (``image_encoder.trunk.blocks.N…``,
    ``sam_mask_decoder…``, ``no_mem_embed``), so this model's weights are a subset of an
    official checkpoint's keys.

    Attributes:
        image_encoder: Hiera trunk + FPN neck (``sam2.modeling.backbones.ImageEncoder``).
        sam_prompt_encoder: SAM 2's prompt encoder.
        sam_mask_decoder: SAM 2's mask decoder (with ``conv_s0``/``conv_s1`` for the
            high-resolution features).
        no_mem_embed: ``1×1×C`` token added to the stride-16 embedding (no memory).
        adapter: spatial adapter on the stride-16 embedding, or None.
        img_size: the input side ``S`` in px the model expects.
        unused_params: parameters of the ``SAM2Base`` it was made from that it does not hold.
    """

    #: parameter-name prefix of the mask decoder (freezing policy, parameter counts).
    decoder_prefix = "sam_mask_decoder."

    def __init__(self, base: nn.Module, adapter: SpatialAdapter | None = None,
                 multimask: str = "single") -> None:
        super().__init__()
        if not base.use_high_res_features_in_sam:
            raise ValueError("the SAM 2 config does not use high-resolution features in the "
                             "mask decoder (use_high_res_features_in_sam: false)")
        self.image_encoder = base.image_encoder
        self.sam_prompt_encoder = base.sam_prompt_encoder
        self.sam_mask_decoder = base.sam_mask_decoder
        self.no_mem_embed = base.no_mem_embed
        self.add_no_mem_embed = bool(base.directly_add_no_mem_embed)
        self.adapter = adapter
        self.multimask = multimask
        self.img_size = int(base.image_size)
        held = {id(p) for name in KEPT for p in _params(base, name)}
        self.unused_params = sum(p.numel() for p in base.parameters() if id(p) not in held)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), False)

    def embed(self, images: torch.Tensor) -> Features:
        """Normalise and encode; project the high-resolution levels for the decoder.

        Args:
            images: ``B×3×S×S`` RGB, float in 0..255 (uint8 is accepted).

        Returns:
            ``(emb, [feat_s0, feat_s1])``: the ``B×C×h×w`` image embedding (``h = S/16``,
            ``no_mem_embed`` added, then the adapter), and the stride-4 ``B×C/8×4h×4w`` and
            stride-8 ``B×C/4×2h×2w`` features after the decoder's ``conv_s0``/``conv_s1``.
        """
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.img_size,) * 2:
            raise ValueError(f"expected B×3×{self.img_size}×{self.img_size} images, "
                             f"got {tuple(images.shape)}")
        x = (images.float() - self.pixel_mean) / self.pixel_std
        fpn = self.image_encoder(x)["backbone_fpn"]  # strides 4, 8, 16
        s0 = self.sam_mask_decoder.conv_s0(fpn[0])
        s1 = self.sam_mask_decoder.conv_s1(fpn[1])
        emb = fpn[-1]
        if self.add_no_mem_embed:
            emb = emb + self.no_mem_embed.view(1, -1, 1, 1)
        if self.adapter is not None:
            emb = self.adapter(emb)
        return emb, [s0, s1]

    def decode_with_iou(self, feats: Features, prompts: Prompts | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask decoding one image at a time, with or without prompts.

        The object-score head's hard "no object" override (video tracking) is not applied:
        the logits stay differentiable everywhere.

        Args:
            feats: the output of :meth:`embed`.
            prompts: the batched prompt dict of :mod:`samlora.models.prompts` (points in
                model-input px), or None for prompt-free decoding of every image.

        Returns:
            ``B×1×4h×4w`` low-resolution mask logits and the decoder's ``B×1`` predicted IoU.
        """
        emb, (s0, s1) = feats
        pe = self.sam_prompt_encoder
        if prompts is not None:
            check_prompts(prompts, emb.shape[0])
        image_pe = pe.get_dense_pe()  # 1×C×h×w
        free = pe(points=None, boxes=None, masks=None)  # 1×0×C, 1×C×h×w
        lows, ious = [], []
        for i in range(emb.shape[0]):
            points, box = image_prompts(prompts, i)
            sparse, dense = free if points is None and box is None else \
                pe(points=points, boxes=box, masks=None)
            low, iou, _, _ = self.sam_mask_decoder(
                image_embeddings=emb[i:i + 1],
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=self.multimask == "first",
                repeat_image=False,
                high_res_features=[s0[i:i + 1], s1[i:i + 1]],
            )
            if self.multimask == "first":  # the first of the three masks
                low, iou = low[:, :1], iou[:, :1]
            lows.append(low)
            ious.append(iou)
        return torch.cat(lows, dim=0), torch.cat(ious, dim=0)



def _params(base: nn.Module, name: str) -> list[nn.Parameter]:
    part = getattr(base, name)
    return [part] if isinstance(part, nn.Parameter) else list(part.parameters())


@register_family("sam2")
def build_sam2_segmenter(method_cfg: Mapping, backbone_cfg: Mapping,
                         models_dir: Path | None = None, pretrained: bool = True
                         ) -> Sam2Segmenter:
    """Build a method's model on a SAM 2 backbone.

    Order: the whole ``SAM2Base`` is built and the official checkpoint loaded into it
    strictly; the segmenter then takes the parts it uses; LoRA is injected into those
    (anchored names, so never into the adapter); last the freezing policy.

    Args:
        method_cfg: ``methods.<name>``: ``lora`` (null or r/alpha/dropout/targets),
            ``adapter`` (null or ``hidden`` plus optional ``variant`` code|text and ``init``
            zero|default, see :class:`~samlora.models.adapter.SpatialAdapter`), ``decoder``
            (``train``|``freeze``) and
            ``encoder`` (``freeze``, the default, or ``train``: full fine-tuning).
        backbone_cfg: ``backbones.<id>``: ``family`` (sam2), ``arch`` (a key of
            :data:`samlora.models.sam2_build.ARCHS`), ``img_size`` and ``checkpoint``
            (null = random weights, or file/url/bytes/sha256).
        models_dir: where official checkpoints live (default ``models/pretrained``).
        pretrained: False skips the checkpoint (random weights; parameter counts, tests).

    Returns:
        The :class:`Sam2Segmenter`, in train mode.
    """
    family = backbone_cfg.get("family", "sam2")
    if family != "sam2":
        raise ValueError(f"backbone family {family!r} given to the SAM 2 builder")
    decoder = method_cfg.get("decoder", "train")
    encoder = method_cfg.get("encoder", "freeze")
    if decoder not in DECODER_MODES or encoder not in DECODER_MODES:
        raise ValueError(f"method decoder and encoder must be one of {DECODER_MODES}, got "
                         f"{decoder!r} and {encoder!r}")
    arch, img_size = str(backbone_cfg["arch"]), int(backbone_cfg["img_size"])
    base = build_sam2_base(arch, img_size)
    spec = backbone_cfg.get("checkpoint")
    if spec and pretrained:
        path = fetch_checkpoint(spec, Path(models_dir) if models_dir else DEFAULT_MODELS_DIR)
        load_sam2_weights(base, path, arch)  # fetch_checkpoint has verified size and SHA-256
    else:
        log.info("SAM 2 %s at %d px with random weights (%s)", arch, img_size,
                 "no checkpoint configured" if not spec else "pretrained=False")
    adapter_cfg = method_cfg.get("adapter")
    adapter = None
    if adapter_cfg:
        adapter = SpatialAdapter(base.sam_prompt_embed_dim, int(adapter_cfg["hidden"]),
                                 variant=str(adapter_cfg.get("variant", "code")),
                                 init=str(adapter_cfg.get("init", "zero")))
    multimask = check_multimask(str(method_cfg.get("multimask", "single")))
    model = Sam2Segmenter(base, adapter, multimask)
    del base
    lora_cfg = method_cfg.get("lora")
    if lora_cfg:
        apply_lora(model, lora_cfg, family="sam2")
    set_trainable(model, train_decoder=decoder == "train", train_encoder=encoder == "train")
    return model.train()
