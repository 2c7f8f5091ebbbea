"""LoRA on SAM / SAM 2 modules through peft: symbolic target sets mapped to anchored regexes."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

log = logging.getLogger(__name__)

# Every attention projection of the mask decoder's two-way transformer: per block the
# self-attention, token->image and image->token attention, then the final token->image
# attention; q/k/v/out each. Written relative to the decoder; the family adds its prefix.
_DECODER_ATTN = (r"transformer\.(?:layers\.\d+\.(?:self_attn|cross_attn_token_to_image"
                 r"|cross_attn_image_to_token)|final_attn_token_to_image)\.(?:q|k|v|out)_proj")

# Symbolic target -> regex on module names, per backbone family: names inside a
# segment_anything ``Sam`` (family ``sam``) or inside a ``Sam2Segmenter`` (family ``sam2``,
# official SAM 2 names). peft matches a string ``target_modules`` with re.fullmatch, so
# these are anchored at both ends; the ``image_encoder.`` prefix keeps the mask decoder's
# own MLPs (``mlp.lin1/lin2`` in SAM, ``mlp.layers.0/1`` in SAM 2) out.
LORA_TARGETS: dict[str, dict[str, str]] = {
    "sam": {
        "encoder_ffn": r"image_encoder\.blocks\.\d+\.mlp\.lin[12]",
        "encoder_attn": r"image_encoder\.blocks\.\d+\.attn\.qkv",
        "decoder_attn": rf"mask_decoder\.{_DECODER_ATTN}",
    },
    # LiteMedSAM's TinyViT (a ``sam`` arch): stage 0 is convolutional (no MLP, no
    # attention); stages 1-3 hold TinyViT blocks, 10 in all.
    "litemedsam": {
        "encoder_ffn": r"image_encoder\.layers\.\d+\.blocks\.\d+\.mlp\.fc[12]",
        "encoder_attn": r"image_encoder\.layers\.\d+\.blocks\.\d+\.attn\.qkv",
        "decoder_attn": rf"mask_decoder\.{_DECODER_ATTN}",
    },
    "sam2": {
        "encoder_ffn": r"image_encoder\.trunk\.blocks\.\d+\.mlp\.layers\.[01]",
        "encoder_attn": r"image_encoder\.trunk\.blocks\.\d+\.attn\.qkv",
        "decoder_attn": rf"sam_mask_decoder\.{_DECODER_ATTN}",
    },
}


def target_regex(targets: str | Sequence[str], family: str = "sam") -> str:
    """The regex for one symbolic target name or a list of them (alternatives).

    Args:
        targets: names from ``LORA_TARGETS[family]`` (``encoder_ffn``, ``encoder_attn``,
            ``decoder_attn``).
        family: the backbone family (``sam`` or ``sam2``).

    Raises:
        ValueError: an unknown family or name, listing the known ones.
    """
    if family not in LORA_TARGETS:
        raise ValueError(f"no LoRA targets for backbone family {family!r}; "
                         f"known: {sorted(LORA_TARGETS)}")
    table = LORA_TARGETS[family]
    names = [targets] if isinstance(targets, str) else list(targets)
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        raise ValueError(f"unknown LoRA targets {unknown or names}; known: {sorted(table)}")
    if len(names) == 1:
        return table[names[0]]
    return "|".join(f"(?:{table[n]})" for n in names)


#: Values of ``lora.init`` (the initialisation of the LoRA factors; B starts at zero in both):
#:
#: - ``kaiming`` (default): peft's own, ``init_lora_weights=True``: A kaiming-uniform
#:   (``a=sqrt(5)``, as ``nn.Linear``).
#: - ``gaussian_sqrt_r``: SAM2LoRA's code, A ~ N(0, 1) / sqrt(r), i.e. normal with std
#:   ``1/sqrt(r)``. No peft option matches it (peft's ``"gaussian"`` uses std ``1/r``), so
#:   :func:`init_lora_gaussian_sqrt_r` re-initialises A after peft's injection.
LORA_INITS = ("kaiming", "gaussian_sqrt_r")


def init_lora_gaussian_sqrt_r(model: nn.Module) -> int:
    """Re-draw every LoRA A factor of ``model`` as normal with std ``1/sqrt(r)``, in place.

    For each peft ``LoraLayer`` and each of its adapters, ``lora_A[adapter].weight`` is
    drawn by ``torch.nn.init.normal_`` (so from the global torch RNG, as peft's own init
    is: seed with ``torch.manual_seed`` for reproducible factors); ``lora_B`` is left as
    peft made it, zero, so the adapted model computes the base model's function at init.
    Modules are visited in ``named_modules`` order, which fixes the draws for a seed.

    Returns:
        The number of A matrices re-initialised.
    """
    count = 0
    for _, module in model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        for adapter, lora_a in module.lora_A.items():
            torch.nn.init.normal_(lora_a.weight, mean=0.0, std=1.0 / math.sqrt(module.r[adapter]))
            count += 1
    return count


def lora_module_names(model: nn.Module) -> list[str]:
    """Names of the modules of ``model`` that carry LoRA layers (sorted as registered)."""
    return [name for name, mod in model.named_modules() if isinstance(mod, LoraLayer)]


def apply_lora(sam: nn.Module, lora_cfg: Mapping, family: str = "sam") -> list[str]:
    """Inject LoRA layers into ``sam`` in place (peft ``inject_adapter_in_model``).

    Only the LoRA factors are trainable afterwards; the wrapped base layers keep their
    weights under ``<module>.base_layer.*``, so load official weights before this call.

    Args:
        sam: a segment_anything ``Sam`` (family ``sam``) or a ``Sam2Segmenter`` (``sam2``).
        lora_cfg: the method's ``lora`` mapping: ``r``, ``alpha``, ``dropout`` and
            ``targets`` (a symbolic name from :data:`LORA_TARGETS` or a list of them), and
            optionally ``init`` (one of :data:`LORA_INITS`; absent = ``kaiming``, peft's).
        family: the backbone family whose module names ``sam`` has.

    Returns:
        The targeted module names, e.g. ``image_encoder.blocks.0.mlp.lin1``.
    """
    missing = [k for k in ("r", "alpha", "dropout", "targets") if k not in lora_cfg]
    if missing:
        raise ValueError(f"lora config lacks {missing}")
    init = lora_cfg.get("init", "kaiming")
    if init not in LORA_INITS:
        raise ValueError(f"lora.init: {init!r} is not one of {list(LORA_INITS)}")
    targets = lora_cfg["targets"]
    if not isinstance(targets, str):
        targets = [str(t) for t in targets]
    config = LoraConfig(
        r=int(lora_cfg["r"]),
        lora_alpha=float(lora_cfg["alpha"]),
        lora_dropout=float(lora_cfg["dropout"]),
        target_modules=target_regex(targets, family),
        bias="none",
    )
    inject_adapter_in_model(config, sam)
    names = lora_module_names(sam)
    if not names:
        raise RuntimeError(f"LoRA targets {targets!r} matched no module")
    if init == "gaussian_sqrt_r":
        init_lora_gaussian_sqrt_r(sam)
    n_params = sum(p.numel() for n, p in sam.named_parameters() if "lora_" in n)
    log.info("LoRA r=%s alpha=%s init=%s on %d modules (%s): %s parameters", lora_cfg["r"],
             lora_cfg["alpha"], init, len(names), targets, f"{n_params:,}")
    return names
