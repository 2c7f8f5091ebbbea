"""Fixtures for the model tests: method/backbone configs as in params.yaml, a real DRIVE case."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

TINY_BACKBONE: dict[str, Any] = {"family": "sam", "arch": "tiny", "img_size": 256,
                                 "checkpoint": None}
VIT_B_BACKBONE: dict[str, Any] = {"family": "sam", "arch": "vit_b", "img_size": 1024,
                                  "checkpoint": None}
LOSS: dict[str, Any] = {"bce": 1.0, "dice": 1.0, "cldice": 0.5, "cldice_iters": 10}
TOPOLORA: dict[str, Any] = {
    "backbone": "sam_tiny",
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "targets": "encoder_ffn"},
    "adapter": {"hidden": 256},
    "decoder": "train",
    "loss": LOSS,
}
DECODER_ONLY: dict[str, Any] = {"backbone": "sam_tiny", "lora": None, "adapter": None,
                                "decoder": "train", "loss": LOSS}


@pytest.fixture
def tiny_backbone() -> dict[str, Any]:
    """``backbones.sam_tiny``: random-weight tiny SAM at 256 px."""
    return copy.deepcopy(TINY_BACKBONE)


@pytest.fixture
def vit_b_backbone() -> dict[str, Any]:
    """``backbones.sam_vit_b`` without a checkpoint (random weights, real architecture)."""
    return copy.deepcopy(VIT_B_BACKBONE)


@pytest.fixture
def topolora_cfg() -> dict[str, Any]:
    """``methods.topolora_sam``: LoRA r=8 on the encoder FFN, adapter 256, decoder trained."""
    return copy.deepcopy(TOPOLORA)


@pytest.fixture
def decoder_only_cfg() -> dict[str, Any]:
    """``methods.decoder_only``: no LoRA, no adapter, mask decoder trained."""
    return copy.deepcopy(DECODER_ONLY)


@pytest.fixture(scope="session")
def drive_21(mirror: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """DRIVE training case 21 at 256×256: image ``1×3×256×256`` float 0..255, vessel mask
    ``1×1×256×256`` in {0, 1}."""
    drive = mirror / "DRIVE" / "training"
    with Image.open(drive / "images" / "21_training.tif") as im:
        rgb = np.asarray(im.convert("RGB").resize((256, 256), Image.BILINEAR), dtype=np.float32)
    with Image.open(drive / "1st_manual" / "21_manual1.gif") as im:
        mask = np.asarray(im.convert("L").resize((256, 256), Image.NEAREST)) >= 128
    image = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).contiguous()
    target = torch.from_numpy(mask.astype(np.float32))[None, None]
    return image, target
