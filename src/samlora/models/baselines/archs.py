"""The baseline architectures by name: library class and constructor arguments.

Importing this needs neither torch nor the libraries, so that the workflow (Snakemake
parses its rules once per job) can ask what a backbone needs cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SMP_KINDS = ("unet", "deeplabv3plus")
HF_KINDS = ("segformer", "mask2former")
SWIN_STAGES = ["stage1", "stage2", "stage3", "stage4"]


@dataclass(frozen=True)
class BaselineArch:
    """One baseline architecture.

    Attributes:
        kind: library class: ``unet``/``deeplabv3plus`` (smp) or ``segformer``/``mask2former``
            (transformers).
        options: constructor arguments (smp) or config fields (transformers; for Mask2Former
            ``swin`` holds the Swin backbone's config fields).
        tiny: the architecture name of its small test variant (itself for tiny ones).
        stride: the input side must be a multiple of this (px).
    """

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    tiny: str = ""
    stride: int = 32


ARCHS: dict[str, BaselineArch] = {
    "unet_resnet34": BaselineArch("unet", {"encoder_name": "resnet34"}, tiny="unet_tiny"),
    "deeplabv3plus_resnet50": BaselineArch("deeplabv3plus", {"encoder_name": "resnet50"},
                                           tiny="deeplabv3plus_tiny"),
    # SegFormer-B0 is transformers' default SegformerConfig (MiT-B0 encoder, 256-wide head).
    "segformer_b0": BaselineArch("segformer", {}, tiny="segformer_tiny"),
    # Mask2Former with a Swin-T backbone; the other fields are transformers' defaults
    # (100 queries, 6 pixel-decoder layers, 10 transformer-decoder layers, width 256).
    "mask2former_swin_t": BaselineArch("mask2former", {
        "swin": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24],
                 "window_size": 7, "drop_path_rate": 0.3},
    }, tiny="mask2former_tiny"),
    "unet_tiny": BaselineArch("unet", {"encoder_name": "resnet18", "encoder_depth": 3,
                                       "decoder_channels": (32, 16, 8)}, tiny="unet_tiny",
                              stride=8),
    "deeplabv3plus_tiny": BaselineArch("deeplabv3plus", {"encoder_name": "resnet18",
                                                         "decoder_channels": 32},
                                       tiny="deeplabv3plus_tiny", stride=16),
    "segformer_tiny": BaselineArch("segformer", {
        "hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1],
        "num_attention_heads": [1, 1, 2, 2], "decoder_hidden_size": 32,
    }, tiny="segformer_tiny"),
    "mask2former_tiny": BaselineArch("mask2former", {
        "swin": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2],
                 "window_size": 4},
        "feature_size": 32, "mask_feature_size": 32, "hidden_dim": 32,
        "encoder_feedforward_dim": 64, "encoder_layers": 1, "decoder_layers": 2,
        "num_attention_heads": 2, "dim_feedforward": 64, "num_queries": 8,
    }, tiny="mask2former_tiny"),
}

def get_arch(arch: str) -> BaselineArch:
    """The baseline architecture ``arch``; a clear error for an unknown name."""
    if arch not in ARCHS:
        raise ValueError(f"unknown baseline architecture {arch!r}; known: {sorted(ARCHS)}")
    return ARCHS[arch]
