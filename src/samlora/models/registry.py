"""One builder per backbone family, one signature for every method.

``build_model(method_cfg, backbone_cfg, models_dir=None, pretrained=True)`` looks up
``backbone_cfg["family"]`` (default ``sam``) and calls that family's builder. Every model
it returns takes ``B×3×S×S`` images (float, 0..255) and returns ``B×1×S×S`` logits, and has
an ``img_size`` attribute (S). A family module registers its builder with
:func:`register_family`; the modules listed in :data:`FAMILY_MODULES` are imported lazily.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from torch import nn

log = logging.getLogger(__name__)

Builder = Callable[..., nn.Module]

#: family -> module that registers its builder on import.
FAMILY_MODULES: dict[str, str] = {
    "sam": "samlora.models.segmenter",
    "sam2": "samlora.models.sam2_segmenter",
    "baseline": "samlora.models.baselines.segmenter",
}

_BUILDERS: dict[str, Builder] = {}


def register_family(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(method_cfg, backbone_cfg, models_dir, pretrained)``."""

    def deco(fn: Builder) -> Builder:
        _BUILDERS[name] = fn
        return fn

    return deco


def families() -> list[str]:
    """Known backbone families, sorted."""
    return sorted(FAMILY_MODULES)


def get_builder(family: str) -> Builder:
    """The builder of ``family``.

    Raises:
        ValueError: an unknown family, listing the known ones.
    """
    if family not in FAMILY_MODULES:
        raise ValueError(f"unknown backbone family {family!r}; known: {families()}")
    if family not in _BUILDERS:
        importlib.import_module(FAMILY_MODULES[family])
    return _BUILDERS[family]


def build_model(method_cfg: Mapping, backbone_cfg: Mapping, models_dir: Path | None = None,
                pretrained: bool = True) -> nn.Module:
    """Build a method's model on its backbone (``backbone_cfg["family"]``, default ``sam``).

    Args:
        method_cfg: ``methods.<name>`` from params.yaml.
        backbone_cfg: ``backbones.<id>`` from params.yaml.
        models_dir: where official checkpoints live (default ``models/pretrained``).
        pretrained: False builds with random weights (parameter counts, tests).
    """
    family = str(backbone_cfg.get("family", "sam"))
    return get_builder(family)(method_cfg, backbone_cfg, models_dir=models_dir,
                               pretrained=pretrained)
