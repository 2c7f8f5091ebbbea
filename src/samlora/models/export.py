"""Export a trained SAM segmenter as a standalone checkpoint in segment_anything's layout.

LoRA is merged into the dense weights with peft's own merge (``LoraLayer.merge``) and the
wrapped layers are put back, so the result has exactly the keys of an official SAM
checkpoint (a plain ``state_dict`` of ``Sam``: ``image_encoder.*``, ``prompt_encoder.*``,
``mask_decoder.*``) and loads into a ``Sam`` built by segment_anything alone. The trained
mask decoder is in it as trained. The spatial adapter has no slot in SAM's layout: it is
written beside the checkpoint as ``<name>.adapter.safetensors`` and is applied to the image
embedding (``out = z + f(z)``) before the mask decoder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import save_file
from torch import nn

from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

ADAPTER_SUFFIX = ".adapter.safetensors"


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA layer of ``model`` into its base layer, in place, and unwrap it.

    Each peft layer adds ``scaling · B·A`` to its base weight (``merge(safe_merge=True)``
    refuses non-finite results) and is replaced by the base ``nn.Linear``; peft's config
    record is dropped, so the module tree is the plain one again.

    Returns:
        The number of layers merged.
    """
    names = [n for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    for name in names:
        layer = model.get_submodule(name)
        layer.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.get_base_layer())
    for mod in model.modules():
        if hasattr(mod, "peft_config"):
            del mod.peft_config
    log.info("merged %d LoRA layers into their dense weights", len(names))
    return len(names)


def adapter_path(checkpoint: Path) -> Path:
    """Where the spatial adapter of an exported ``checkpoint`` is written."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ADAPTER_SUFFIX)


def write_adapter(adapter: nn.Module, checkpoint: Path, applies_to: str) -> Path:
    """Write a spatial adapter beside ``checkpoint`` (safetensors, atomically).

    Args:
        adapter: the :class:`~samlora.models.adapter.SpatialAdapter`.
        checkpoint: the exported checkpoint it belongs to.
        applies_to: where the adapter acts, stored in the file's metadata.

    Returns:
        :func:`adapter_path` of ``checkpoint``.
    """
    path = adapter_path(checkpoint)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in adapter.state_dict().items()}
    meta = {"channels": str(adapter.channels), "hidden": str(adapter.hidden),
            "variant": str(adapter.variant), "init": str(adapter.init),
            "applies_to": applies_to}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def export_sam(model: nn.Module, out: Path) -> dict[str, Path]:
    """Write a SamSegmenter as an official-layout SAM checkpoint (+ its adapter, if any).

    Args:
        model: a :class:`~samlora.models.segmenter.SamSegmenter` with trained weights
            loaded; its LoRA layers are merged in place.
        out: the checkpoint file (``torch.save`` of a plain state_dict, as Meta ships).

    Returns:
        ``{"checkpoint": out}`` plus ``"adapter"`` when the model has a spatial adapter.

    Raises:
        ValueError: the model is not a SAM segmenter.
    """
    sam = getattr(model, "sam", None)
    if sam is None or not hasattr(sam, "image_encoder"):
        raise ValueError(f"export_sam writes segment_anything checkpoints; got a "
                         f"{type(model).__name__} (only the sam and sam2 families can be "
                         "exported; sam2 through samlora.models.export_sam2)")
    merge_lora(model)
    out = Path(out)
    written = {"checkpoint": out}
    sd = {k: v.detach().to("cpu").contiguous() for k, v in sam.state_dict().items()}
    with atomic_path(out) as tmp:
        torch.save(sd, tmp)
    adapter = getattr(model, "adapter", None)
    if adapter is not None:
        written["adapter"] = write_adapter(
            adapter, out, "image embedding before the mask decoder: out = z + f(z)")
    log.info("exported %d tensors to %s%s", len(sd), out,
             f" (+ adapter {written['adapter']})" if "adapter" in written else "")
    return written
