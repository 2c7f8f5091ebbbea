"""apply_lora: peft injection on the named target sets only (SAM family)."""

from __future__ import annotations

import re

import pytest
import torch

from samlora.models.lora import LORA_TARGETS, apply_lora, target_regex
from samlora.models.sam import build_sam

R16 = {"r": 16, "alpha": 32, "dropout": 0.0, "targets": "encoder_ffn"}


def test_vit_b_r16_targets_exactly_the_24_ffn_linears() -> None:
    sam = build_sam("vit_b", 1024)
    names = apply_lora(sam, R16)
    assert names == [f"image_encoder.blocks.{i}.mlp.lin{j}" for i in range(12) for j in (1, 2)]
    lora = {n: p for n, p in sam.named_parameters() if ".lora_" in n}
    assert sum(p.numel() for p in lora.values()) == 1_474_560
    assert all(p.requires_grad for p in lora.values())
    assert not any(p.requires_grad for n, p in sam.named_parameters() if n not in lora)
    assert not any("mask_decoder" in n for n in lora)


def test_regex_is_anchored_on_the_image_encoder() -> None:
    rx = LORA_TARGETS["sam"]["encoder_ffn"]
    assert re.fullmatch(rx, "image_encoder.blocks.11.mlp.lin2")
    assert not re.fullmatch(rx, "mask_decoder.transformer.layers.0.mlp.lin1")
    assert not re.fullmatch(rx, "image_encoder.blocks.1.mlp.lin1.base_layer")


def test_injection_keeps_the_function_at_init() -> None:
    torch.manual_seed(0)
    sam = build_sam("tiny", 256)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        before = sam.image_encoder(x)
        names = apply_lora(sam, {"r": 4, "alpha": 8, "dropout": 0.1, "targets": "encoder_ffn"})
        after = sam.image_encoder(x)  # eval mode: no dropout; lora_B starts at zero
    assert len(names) == 2 * len(sam.image_encoder.blocks)
    torch.testing.assert_close(after, before)


def test_several_targets_and_unknown_targets() -> None:
    sam = build_sam("tiny", 256)
    names = apply_lora(sam, {"r": 2, "alpha": 2, "dropout": 0.0,
                             "targets": ["encoder_ffn", "encoder_attn"]})
    assert len(names) == 3 * len(sam.image_encoder.blocks)
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        target_regex("decoder_everything")
    with pytest.raises(ValueError, match="lacks"):
        apply_lora(build_sam("tiny", 256), {"r": 2})
