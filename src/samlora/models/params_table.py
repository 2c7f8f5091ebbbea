"""Parameter budget of each method on its backbone's real-size architecture (random weights)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping, Sequence

import pandas as pd

from samlora.models import sam, sam2_build
from samlora.models.registry import build_model
from samlora.models.segmenter import count_parameters

log = logging.getLogger(__name__)

COLUMNS = ["method", "backbone", "total", "trainable", "pct", "lora", "adapter", "encoder",
           "decoder", "head"]
ADAPTER_CHANNELS = 256  # SAM's image-embedding width, where the spatial adapter sits
ADAPTER_NOTE = (
    "TopoLoRA-SAM's reference code uses the structure DWConv3x3 -> Conv1x1(C->h) -> BN -> GELU "
    "-> Conv1x1(h->C) at h=256: 133,888 parameters, the figure inside its 4.93M (5.21 %). "
    "The paper's formula z + Conv1x1(ReLU(DWConv3x3(z))) at C=256 counts 68,352 with biases "
    "(67,840 without), i.e. ~68K. The paper's ~66K matches that formula's 1x1 conv alone "
    "(65,792, the depthwise 3x3 left out), or the reference structure at hidden width 124 "
    "(66,040); width 128 gives 68,096. adapter.variant selects the structure: code (the "
    "reference's) or text (the paper's formula, with biases).")


def _backbone_cfg(cfg: Mapping, backbone: str, arch_override: str | None) -> dict:
    if backbone not in cfg["backbones"]:
        raise KeyError(f"unknown backbone {backbone!r}; known: {sorted(cfg['backbones'])}")
    bcfg = dict(cfg["backbones"][backbone])
    if arch_override is not None:
        family = str(bcfg.get("family", "sam"))
        archs = {"sam": sam.get_arch, "sam2": sam2_build.get_arch}.get(family)
        if family == "baseline" and arch_override == "tiny":  # each baseline's own tiny one
            from samlora.models.baselines.nets import get_arch as baseline_arch

            bcfg["arch"] = baseline_arch(str(bcfg["arch"])).tiny
            return bcfg
        if archs is None:  # no architecture of that name in this family
            log.warning("backbone %s (family %s) keeps its own architecture", backbone, family)
            return bcfg
        bcfg["arch"] = arch_override
        bcfg["img_size"] = archs(arch_override).default_img_size
    return bcfg


def params_table(cfg: Mapping, methods: Sequence[str] | None = None,
                 arch_override: str | None = None) -> pd.DataFrame:
    """One row per method: where its parameters are and how many it trains.

    Each method is built on its backbone's architecture and input size with random weights
    (no checkpoint is read), so the table needs no download.

    Args:
        cfg: the composed params (needs ``methods`` and ``backbones``).
        methods: method names; None = every entry of ``cfg.methods``.
        arch_override: build every method on this architecture instead (at its default
            input size), e.g. ``tiny`` (each SAM family has one) for a quick check;
            families without such architectures keep their own.

    Returns:
        Columns ``method, backbone, total, trainable, pct`` and the trainable split
        ``lora, adapter, encoder, decoder, head`` (see ``segmenter.count_parameters``);
        ``pct`` is 100 · trainable / total, total including LoRA and adapter parameters
        and, for SAM 2, the release's video-memory modules the segmenter does not hold
        (so a plain SAM 2.1 hiera_t counts 38,962,498).
    """
    names = list(methods) if methods else list(cfg["methods"])
    unknown = [m for m in names if m not in cfg["methods"]]
    if unknown:
        raise KeyError(f"unknown methods {unknown}; known: {sorted(cfg['methods'])}")
    rows = []
    for name in names:
        mcfg = cfg["methods"][name]
        backbone = str(mcfg["backbone"])
        model = build_model(mcfg, _backbone_cfg(cfg, backbone, arch_override),
                                pretrained=False)
        c = count_parameters(model)
        del model
        gc.collect()
        rows.append({"method": name, "backbone": backbone, "total": c["total"],
                     "trainable": c["trainable"], "pct": c["trainable_pct"],
                     **{k: c[k] for k in ("lora", "adapter", "encoder", "decoder", "head")}})
        log.info("%s on %s: %s of %s trainable (%.2f %%)", name, backbone,
                 f"{c['trainable']:,}", f"{c['total']:,}", c["trainable_pct"])
    return pd.DataFrame(rows, columns=COLUMNS)


def litemedsam_table(cfg: Mapping, backbone: str = "litemedsam") -> pd.DataFrame:
    """:func:`params_table` of every SAM-family method of ``cfg`` rebuilt on ``backbone``
    (LiteMedSAM: the real pretrained backbone of the CPU demo)."""
    methods = {name: {**dict(m), "backbone": backbone} for name, m in cfg["methods"].items()
               if (cfg["backbones"].get(str(m["backbone"])) or {}).get("family") == "sam"}
    if not methods:
        return pd.DataFrame(columns=COLUMNS)
    return params_table({"methods": methods, "backbones": cfg["backbones"]})


def adapter_budgets(channels: int = ADAPTER_CHANNELS) -> pd.DataFrame:
    """Parameters of the spatial adapter in the configurations behind the two published
    figures (see :data:`ADAPTER_NOTE`), counted on the built
    :class:`~samlora.models.adapter.SpatialAdapter` of each ``adapter.variant``.

    Returns:
        Columns ``configuration, params``.
    """
    from torch import nn

    from samlora.models.adapter import SpatialAdapter

    def n(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    text = SpatialAdapter(channels, channels, variant="text")
    rows = [(f"reference code, hidden {h}", n(SpatialAdapter(channels, h)))
            for h in (channels, 128, 124)]
    rows += [("paper text variant, with biases", n(text)),
             ("paper formula, its Conv1x1 alone", n(text.project))]
    return pd.DataFrame(rows, columns=["configuration", "params"])


#: SAM2LoRA's rank ablation (its code: Hiera-L, alpha = 2r).
RANK_LADDER = (32, 64, 128, 256, 512, 1024)


def rank_ladder(arch: str = "sam2.1_hiera_l", targets: Sequence[str] = ("encoder_attn",
                                                                        "decoder_attn"),
                ranks: Sequence[int] = RANK_LADDER) -> pd.DataFrame:
    """LoRA parameters and trainable share per rank on a real-size SAM 2.1 (random weights).

    The LoRA count is Σ r·(in + out) over the targeted linears (peft's A and B; no bias).
    Two shares: of the whole SAM 2.1 model with its LoRA (``pct_of_sam2``, memory modules
    included, as SAM2LoRA counts the model it loads), and of the parts samlora's segmenter
    keeps (``pct_of_segmenter``: image encoder, prompt encoder, mask decoder).

    Returns:
        Columns ``r, lora, pct_of_sam2, pct_of_segmenter``.
    """
    import re

    from torch import nn

    from samlora.models.lora import target_regex
    from samlora.models.sam2_segmenter import Sam2Segmenter

    base = sam2_build.build_sam2_base(arch, sam2_build.get_arch(arch).default_img_size)
    full = sum(p.numel() for p in base.parameters())
    model = Sam2Segmenter(base, None)
    kept = sum(p.numel() for p in model.parameters())
    pattern = re.compile(target_regex(list(targets), "sam2"))
    linears = [m for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and pattern.fullmatch(n)]
    rows = []
    for r in ranks:
        lora = sum(int(r) * (m.in_features + m.out_features) for m in linears)
        rows.append({"r": int(r), "lora": lora,
                     "pct_of_sam2": round(100.0 * lora / (full + lora), 2),
                     "pct_of_segmenter": round(100.0 * lora / (kept + lora), 2)})
    del model, base
    gc.collect()
    return pd.DataFrame(rows, columns=["r", "lora", "pct_of_sam2", "pct_of_segmenter"])
