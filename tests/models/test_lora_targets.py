"""LoRA target sets per backbone family: the exact module names each set reaches, no leaks."""

from __future__ import annotations

import pytest
import torch

from samlora.models.lora import apply_lora, lora_module_names, target_regex
from samlora.models.registry import build_model
from samlora.models.sam import build_sam

ATTN = ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token")
PROJ = ("q_proj", "k_proj", "v_proj", "out_proj")


def _decoder_attn(prefix: str, depth: int = 2) -> list[str]:
    """Every attention projection of a depth-2 two-way transformer, in module order."""
    names = [f"{prefix}.transformer.layers.{i}.{a}.{p}"
             for i in range(depth) for a in ATTN for p in PROJ]
    return names + [f"{prefix}.transformer.final_attn_token_to_image.{p}" for p in PROJ]


SAM_VIT_B = {  # segment_anything Sam: 12 ViT blocks
    "encoder_ffn": [f"image_encoder.blocks.{i}.mlp.lin{j}" for i in range(12) for j in (1, 2)],
    "encoder_attn": [f"image_encoder.blocks.{i}.attn.qkv" for i in range(12)],
    "decoder_attn": _decoder_attn("mask_decoder"),
}
SAM2_HIERA_T = {  # Sam2Segmenter on SAM 2.1 hiera_t: 1 + 2 + 7 + 2 = 12 Hiera blocks
    "encoder_ffn": [f"image_encoder.trunk.blocks.{i}.mlp.layers.{j}"
                    for i in range(12) for j in (0, 1)],
    "encoder_attn": [f"image_encoder.trunk.blocks.{i}.attn.qkv" for i in range(12)],
    "decoder_attn": _decoder_attn("sam_mask_decoder"),
}


def _lora(targets: str | list[str], r: int = 4) -> dict:
    return {"r": r, "alpha": 2 * r, "dropout": 0.0, "targets": targets}


@pytest.mark.parametrize("target", sorted(SAM_VIT_B))
def test_sam_vit_b_names(target: str) -> None:
    sam = build_sam("vit_b", 1024)
    assert apply_lora(sam, _lora(target)) == SAM_VIT_B[target]


@pytest.mark.parametrize("target", sorted(SAM2_HIERA_T))
def test_sam2_hiera_t_names(target: str) -> None:
    method = {"lora": _lora(target), "adapter": None, "decoder": "freeze"}
    model = build_model(method, {"family": "sam2", "arch": "sam2.1_hiera_t", "img_size": 1024,
                                 "checkpoint": None})
    assert lora_module_names(model) == SAM2_HIERA_T[target]


def test_sam2lora_sets_together_and_lora_size() -> None:
    """encoder_attn + decoder_attn on hiera_t: exactly the two lists; r·(in + out) each."""
    r = 8
    method = {"lora": _lora(["encoder_attn", "decoder_attn"], r), "adapter": None,
              "decoder": "freeze"}
    model = build_model(method, {"family": "sam2", "arch": "sam2.1_hiera_t", "img_size": 1024,
                                 "checkpoint": None})
    names = lora_module_names(model)
    assert names == SAM2_HIERA_T["encoder_attn"] + SAM2_HIERA_T["decoder_attn"]
    modules = dict(model.named_modules())
    expected = sum(r * (modules[n].in_features + modules[n].out_features) for n in names)
    lora = {n: p for n, p in model.named_parameters() if ".lora_" in n}
    assert sum(p.numel() for p in lora.values()) == expected == 239_360
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(lora)
    # the decoder's MLPs (mlp.layers.0/1, as in the trunk) and the output heads stay plain
    assert not [n for n in lora if ".mlp." in n or "hypernetworks" in n or "iou_" in n]


def test_sets_do_not_leak_on_the_tiny_configs() -> None:
    """Each set alone on the tiny SAM and tiny SAM 2.1: only its own kind of module."""
    tiny_sam = {"family": "sam", "arch": "tiny", "img_size": 256, "checkpoint": None}
    tiny_sam2 = {"family": "sam2", "arch": "tiny", "img_size": 256, "checkpoint": None}
    suffix = {"encoder_ffn": (".lin1", ".lin2", ".layers.0", ".layers.1"),
              "encoder_attn": (".attn.qkv",), "decoder_attn": PROJ}
    for target, ends in suffix.items():
        for backbone, encoder in ((tiny_sam, "sam.image_encoder."),
                                  (tiny_sam2, "image_encoder.trunk.")):
            model = build_model({"lora": _lora(target), "adapter": None, "decoder": "freeze"},
                                backbone)
            names = lora_module_names(model)
            assert names and all(n.endswith(ends) for n in names), (target, names)
            inside = encoder if target.startswith("encoder") else "mask_decoder.transformer."
            assert all(inside in n for n in names), (target, names)


def test_unknown_family_or_target() -> None:
    with pytest.raises(ValueError, match="family"):
        target_regex("encoder_attn", family="unet")
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        target_regex(["encoder_attn", "encoder_qkv"], family="sam2")
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="not found in the base model"):  # peft's own check
        apply_lora(torch.nn.Sequential(torch.nn.Linear(2, 2)), _lora("decoder_attn"), "sam2")
