"""build_sam: the official constants, other input sizes and the tiny variant."""

from __future__ import annotations

import time

import pytest
import torch
from segment_anything import sam_model_registry

from samlora.models.sam import ARCHS, _build_from_classes, build_sam


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_vit_b_parameter_counts() -> None:
    sam = build_sam("vit_b", 1024)
    assert _numel(sam) == 93_735_472
    assert _numel(sam.image_encoder) == 89_670_912
    assert _numel(sam.prompt_encoder) == 6_220
    assert _numel(sam.mask_decoder) == 4_058_340
    assert not sam.training


def test_vit_b_constants_match_segment_anything() -> None:
    """The class-built vit_b (used at other sizes) has the registry's exact layout."""
    ours = _build_from_classes(ARCHS["vit_b"], 1024).state_dict()
    ref = sam_model_registry["vit_b"](checkpoint=None).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in ref.items()}


def test_vit_b_at_512_has_32px_embedding() -> None:
    sam = build_sam("vit_b", 512)
    assert sam.image_encoder.img_size == 512
    assert sam.image_encoder.pos_embed.shape == (1, 32, 32, 768)
    assert sam.prompt_encoder.image_embedding_size == (32, 32)
    assert sam.image_encoder.blocks[2].attn.rel_pos_h.shape == (63, 64)  # global: 2·32−1
    assert sam.image_encoder.blocks[0].attn.rel_pos_h.shape == (27, 64)  # window 14


def test_tiny_builds_fast_and_runs() -> None:
    start = time.perf_counter()
    sam = build_sam("tiny", 256)
    assert time.perf_counter() - start < 0.5
    assert _numel(sam) < 0.01 * 93_735_472
    with torch.no_grad():
        emb = sam.image_encoder(torch.zeros(2, 3, 256, 256))
    assert emb.shape == (2, ARCHS["tiny"].prompt_embed_dim, 16, 16)


@pytest.mark.parametrize(("arch", "size"), [("vit_x", 1024), ("tiny", 100), ("tiny", 0)])
def test_bad_arguments_raise(arch: str, size: int) -> None:
    with pytest.raises(ValueError):
        build_sam(arch, size)
