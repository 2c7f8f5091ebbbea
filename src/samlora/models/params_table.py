"""Parameter budget of each method on its backbone's real-size architecture (random weights)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping, Sequence

import pandas as pd

from samlora.models.sam import get_arch
from samlora.models.registry import build_model
from samlora.models.segmenter import count_parameters

log = logging.getLogger(__name__)

COLUMNS = ["method", "backbone", "total", "trainable", "pct", "lora", "adapter", "decoder"]


def _backbone_cfg(cfg: Mapping, backbone: str, arch_override: str | None) -> dict:
    if backbone not in cfg["backbones"]:
        raise KeyError(f"unknown backbone {backbone!r}; known: {sorted(cfg['backbones'])}")
    bcfg = dict(cfg["backbones"][backbone])
    if arch_override is not None:
        bcfg["arch"] = arch_override
        bcfg["img_size"] = get_arch(arch_override).default_img_size
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
            input size), e.g. ``tiny`` for a quick check.

    Returns:
        Columns ``method, backbone, total, trainable, pct, lora, adapter, decoder``;
        ``pct`` is 100 · trainable / total, total including LoRA and adapter parameters.
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
                     "trainable": c["trainable"], "pct": c["trainable_pct"], "lora": c["lora"],
                     "adapter": c["adapter"], "decoder": c["decoder"]})
        log.info("%s on %s: %s of %s trainable (%.2f %%)", name, backbone,
                 f"{c['trainable']:,}", f"{c['total']:,}", c["trainable_pct"])
    return pd.DataFrame(rows, columns=COLUMNS)
