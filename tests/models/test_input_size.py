"""Input size is a parameter: a 1024 px SAM ViT-B checkpoint loads into a 512 px model."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from samlora.models.sam import build_sam
from samlora.models.segmenter import SamSegmenter

GLOBAL_BLOCKS = (2, 5, 8, 11)  # vit_b's global-attention blocks (the others use 14×14 windows)


def test_vit_b_1024_checkpoint_into_512_model(tmp_path: Path) -> None:
    """(The builder's fetch + verify + load path is covered at 1024 in test_checkpoints.)"""
    torch.manual_seed(11)
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(build_sam("vit_b", 1024).state_dict(), path)  # the official layout
    saved = torch.load(path, weights_only=True)
    model = SamSegmenter(build_sam("vit_b", 512, checkpoint=path)).eval()
    sd = model.state_dict()

    # absolute position embedding: 1×64×64×768 -> 1×32×32×768, bicubic
    src = saved["image_encoder.pos_embed"]
    expect = F.interpolate(src.permute(0, 3, 1, 2), size=(32, 32), mode="bicubic",
                           align_corners=False).permute(0, 2, 3, 1)
    assert sd["sam.image_encoder.pos_embed"].shape == (1, 32, 32, 768)
    torch.testing.assert_close(sd["sam.image_encoder.pos_embed"], expect)

    # relative position tables: global blocks span the grid (2·64−1 -> 2·32−1 rows), linear;
    # windowed blocks keep their 2·14−1 rows untouched
    for i in range(12):
        for axis in ("h", "w"):
            key = f"image_encoder.blocks.{i}.attn.rel_pos_{axis}"
            got, old = sd[f"sam.{key}"], saved[key]
            if i in GLOBAL_BLOCKS:
                assert old.shape == (127, 64) and got.shape == (63, 64)
                ref = F.interpolate(old.t().unsqueeze(0), size=63, mode="linear",
                                    align_corners=False).squeeze(0).t()
                torch.testing.assert_close(got, ref)
            else:
                assert torch.equal(got, old), key

    # other weights are the checkpoint's; the model runs at 512 px
    assert torch.equal(sd["sam.image_encoder.blocks.3.mlp.lin1.weight"],
                       saved["image_encoder.blocks.3.mlp.lin1.weight"])
    assert model.sam.prompt_encoder.image_embedding_size == (32, 32)
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 512, 512) * 255)
    assert logits.shape == (1, 1, 512, 512) and torch.isfinite(logits).all()
