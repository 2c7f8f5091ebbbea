"""Export a trained SAM 2 segmenter as a standalone checkpoint in the official SAM 2.1 layout.

The official files are ``{"model": state_dict}`` of a whole ``SAM2Base``, video-memory
modules included. A :class:`~samlora.models.sam2_segmenter.Sam2Segmenter` holds only the
image encoder, prompt encoder, mask decoder and ``no_mem_embed``, so the export fills a
whole ``SAM2Base`` from two sources:

* the parts the segmenter holds: its weights after LoRA is merged into the dense weights
  with peft's merge (:func:`samlora.models.export.merge_lora`), the trained decoder as
  trained;
* the parts it does not hold (memory attention, memory encoder, object-pointer projections,
  ``maskmem_tpos_enc``, …): the run's base checkpoint when the backbone has one (size and
  SHA-256 verified by ``fetch_checkpoint``), otherwise (a random-weight backbone) a
  ``SAM2Base`` built afresh with the run's seed, which redraws exactly the random weights
  the run started from. Those memory weights were never trained, so they are only as
  meaningful as their source.

Before the merge, every frozen tensor the segmenter holds is compared with the base it is
about to be written into: a base that is not the run's own (other checkpoint, other seed)
is an error, not a silent mix. The result loads with strict key matching into a
``SAM2Base`` built by the sam2 package alone (``sam2.build_sam.build_sam2(config, path)``
for a packaged config). The spatial adapter has no slot in that layout: it is written
beside the checkpoint as ``<name>.adapter.safetensors``, applied to the stride-16 image
embedding after ``no_mem_embed`` (``out = z + f(z)``), before the mask decoder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from samlora.models.checkpoints import fetch_checkpoint
from samlora.models.export import merge_lora, write_adapter
from samlora.models.sam2_build import MAX_LISTED, build_sam2_base, load_sam2_weights
from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

ADAPTER_APPLIES_TO = ("stride-16 image embedding after no_mem_embed, before the mask "
                      "decoder: out = z + f(z)")


def run_base(rc: Mapping[str, Any], models_dir: Path) -> tuple[nn.Module, str]:
    """The whole ``SAM2Base`` a SAM 2 run started from, and a note on where it came from.

    Args:
        rc: the run's config (``config.yaml``): ``backbone_cfg`` (``arch``, ``img_size``,
            ``checkpoint``) and ``seed``.
        models_dir: folder of official checkpoints (``models/pretrained``).

    Returns:
        ``(base, source)``: the ``SAM2Base`` (eval mode, CPU) and a sentence for the export
        record, naming the checkpoint file and its SHA-256, or the seed of the random init.
    """
    bcfg = rc["backbone_cfg"]
    arch, img_size = str(bcfg["arch"]), int(bcfg["img_size"])
    spec = bcfg.get("checkpoint")
    if spec:
        path = fetch_checkpoint(spec, Path(models_dir))  # size and SHA-256 verified
        base = build_sam2_base(arch, img_size)
        load_sam2_weights(base, path, arch)
        return base, f"base checkpoint {path.name} (sha256 {spec['sha256']})"
    torch.manual_seed(int(rc["seed"]))  # as build_run_model seeds a random-weight backbone
    base = build_sam2_base(arch, img_size)
    return base, (f"random init of {arch} with seed {rc['seed']} (the backbone has no "
                  "checkpoint; memory modules are untrained random weights)")


def _check_frozen(model: nn.Module, base_sd: Mapping[str, torch.Tensor]) -> None:
    """Every frozen tensor of the (unmerged) segmenter must equal the base's."""
    bad = []
    for name, p in model.named_parameters():
        if p.requires_grad or ".lora_" in name or name.startswith("adapter."):
            continue
        key = name.replace(".base_layer.", ".")
        if key not in base_sd or not torch.equal(p.detach().cpu(), base_sd[key]):
            bad.append(key)
    if bad:
        raise RuntimeError(
            f"the SAM 2 base the memory modules would come from is not the run's own: "
            f"{len(bad)} frozen tensors differ, e.g. {bad[:MAX_LISTED]} (other checkpoint "
            "or other seed?)")


def export_sam2(model: nn.Module, base: nn.Module, out: Path) -> dict[str, Path]:
    """Write a Sam2Segmenter as an official-layout SAM 2 checkpoint (+ its adapter, if any).

    Args:
        model: a :class:`~samlora.models.sam2_segmenter.Sam2Segmenter` with trained weights
            loaded; its LoRA layers are merged in place.
        base: the whole ``SAM2Base`` the run started from (:func:`run_base`); it supplies
            the memory modules and receives the segmenter's weights (modified in place).
        out: the checkpoint file (``torch.save({"model": state_dict})``, as Meta ships).

    Returns:
        ``{"checkpoint": out}`` plus ``"adapter"`` when the model has a spatial adapter.

    Raises:
        ValueError: the model is not a SAM 2 segmenter.
        RuntimeError: ``base`` does not match the run's frozen weights, or the segmenter
            holds tensors (other than the adapter's) that ``SAM2Base`` has no slot for.
    """
    if not hasattr(model, "sam_mask_decoder") or not hasattr(base, "memory_attention"):
        raise ValueError(f"export_sam2 needs a Sam2Segmenter and a SAM2Base; got a "
                         f"{type(model).__name__} and a {type(base).__name__}")
    base_sd = base.state_dict()
    _check_frozen(model, base_sd)
    merge_lora(model)
    held = {k: v for k, v in model.state_dict().items() if not k.startswith("adapter.")}
    extra = sorted(set(held) - set(base_sd))
    if extra:
        raise RuntimeError(f"segmenter tensors with no slot in SAM2Base: {extra[:MAX_LISTED]}")
    base.load_state_dict({**base_sd, **held}, strict=True)
    sd = {k: v.detach().to("cpu").contiguous() for k, v in base.state_dict().items()}
    out = Path(out)
    written = {"checkpoint": out}
    with atomic_path(out) as tmp:
        torch.save({"model": sd}, tmp)
    adapter = getattr(model, "adapter", None)
    if adapter is not None:
        written["adapter"] = write_adapter(adapter, out, ADAPTER_APPLIES_TO)
    log.info("exported %d tensors (%d from the segmenter, %d memory-module tensors from the "
             "base) to %s%s", len(sd), len(held), len(sd) - len(held), out,
             f" (+ adapter {written['adapter']})" if "adapter" in written else "")
    return written
