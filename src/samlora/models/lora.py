"""LoRA on SAM modules through peft, with symbolic target names mapped to anchored regexes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

log = logging.getLogger(__name__)

# Symbolic target -> regex on module names of a segment_anything ``Sam``. peft matches a
# string ``target_modules`` with re.fullmatch, so these are anchored at both ends; the
# ``image_encoder.`` prefix keeps the mask decoder's own ``mlp.lin1/lin2`` out.
LORA_TARGETS: dict[str, str] = {
    "encoder_ffn": r"image_encoder\.blocks\.\d+\.mlp\.lin[12]",
    "encoder_qkv": r"image_encoder\.blocks\.\d+\.attn\.qkv",
}


def target_regex(targets: str | Sequence[str]) -> str:
    """The regex for one symbolic target name or a list of them (alternatives).

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    names = [targets] if isinstance(targets, str) else list(targets)
    unknown = [n for n in names if n not in LORA_TARGETS]
    if unknown or not names:
        raise ValueError(f"unknown LoRA targets {unknown or names}; known: {sorted(LORA_TARGETS)}")
    if len(names) == 1:
        return LORA_TARGETS[names[0]]
    return "|".join(f"(?:{LORA_TARGETS[n]})" for n in names)


def lora_module_names(model: nn.Module) -> list[str]:
    """Names of the modules of ``model`` that carry LoRA layers (sorted as registered)."""
    return [name for name, mod in model.named_modules() if isinstance(mod, LoraLayer)]


def apply_lora(sam: nn.Module, lora_cfg: Mapping) -> list[str]:
    """Inject LoRA layers into ``sam`` in place (peft ``inject_adapter_in_model``).

    Only the LoRA factors are trainable afterwards; the wrapped base layers keep their
    weights under ``<module>.base_layer.*``, so load official weights before this call.

    Args:
        sam: a segment_anything ``Sam`` (or any module with the same names).
        lora_cfg: the method's ``lora`` mapping: ``r``, ``alpha``, ``dropout`` and
            ``targets`` (a symbolic name from :data:`LORA_TARGETS` or a list of them).

    Returns:
        The targeted module names, e.g. ``image_encoder.blocks.0.mlp.lin1``.
    """
    missing = [k for k in ("r", "alpha", "dropout", "targets") if k not in lora_cfg]
    if missing:
        raise ValueError(f"lora config lacks {missing}")
    targets = lora_cfg["targets"]
    if not isinstance(targets, str):
        targets = [str(t) for t in targets]
    config = LoraConfig(
        r=int(lora_cfg["r"]),
        lora_alpha=float(lora_cfg["alpha"]),
        lora_dropout=float(lora_cfg["dropout"]),
        target_modules=target_regex(targets),
        bias="none",
    )
    inject_adapter_in_model(config, sam)
    names = lora_module_names(sam)
    if not names:
        raise RuntimeError(f"LoRA targets {targets!r} matched no module")
    n_params = sum(p.numel() for n, p in sam.named_parameters() if "lora_" in n)
    log.info("LoRA r=%s alpha=%s on %d modules (%s): %s parameters", lora_cfg["r"],
             lora_cfg["alpha"], len(names), targets, f"{n_params:,}")
    return names
