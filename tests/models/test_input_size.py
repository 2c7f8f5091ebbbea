"""Input size is a parameter: a SAM checkpoint saved at one input size loads into a model built at
another (e.g. the 1024 px ViT-B weights into a 512 px model).

The expected tables do not come from the loader's own ``F.interpolate`` calls: relative position
tables are checked against segment_anything's ``get_rel_pos`` (which resizes a table of the
wrong length itself, at run time), absolute position embeddings against cubic convolution
written out below, and the resized encoder against one that lets segment_anything resize the
relative tables at run time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything.modeling.image_encoder import get_rel_pos

from samlora.models.sam import ARCHS, build_sam
from samlora.models.segmenter import SamSegmenter

GLOBAL_BLOCKS = (2, 5, 8, 11)  # vit_b's global-attention blocks (the others use 14×14 windows)
TINY_GLOBAL = ARCHS["tiny"].global_attn_indexes  # (1,): block 0 uses 4×4 windows


def _keys_weight(d: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel at distance ``d`` (a = -0.75, as PyTorch's bicubic)."""
    d = abs(d)
    if d <= 1:
        return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
    if d < 2:
        return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
    return 0.0


def _cubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``n_out×n_in`` resampling matrix: half-pixel centres (align_corners=False), 4 taps,
    out-of-range taps clamped to the border sample."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        x = (i + 0.5) * n_in / n_out - 0.5  # output centre in input coordinates
        f = math.floor(x)
        for k in range(-1, 3):
            m[i, min(max(f + k, 0), n_in - 1)] += _keys_weight(x - (f + k))
    return m


def _bicubic_oracle(pos: torch.Tensor, side: int) -> torch.Tensor:
    """A ``1×H×W×C`` position embedding resampled to ``1×side×side×C`` (float64 numpy)."""
    _, h, w, _ = pos.shape
    out = np.einsum("ph,qw,hwc->pqc", _cubic_matrix(h, side), _cubic_matrix(w, side),
                    pos[0].double().numpy())
    return torch.from_numpy(out).float()[None]


def test_cubic_oracle_reproduces_known_values() -> None:
    """The oracle itself: rows of weights sum to 1, same size is the identity, and a 2×
    upsampling of [0, 1, 2, 3] gives hand-computed Keys values (border and interior)."""
    for n_in, n_out in ((16, 12), (16, 32), (127, 63)):
        np.testing.assert_allclose(_cubic_matrix(n_in, n_out).sum(axis=1), 1.0)
    np.testing.assert_allclose(_cubic_matrix(7, 7), np.eye(7), atol=1e-12)
    # output 1 sits at x = 0.25: taps -1(→0), 0, 1, 2 with weights -0.10546875, 0.87890625,
    # 0.26171875, -0.03515625 → 0.87890625·0 + 0.26171875·1 - 0.03515625·2 = 0.19140625
    up = _cubic_matrix(4, 8) @ np.arange(4.0)
    np.testing.assert_allclose(up[1], 0.19140625)
    # output 3 (x = 1.25) has all 4 taps inside: 0.87890625·1 + 0.26171875·2 - 0.03515625·3
    # (a = -0.75 is not exact on a line; a = -0.5 would give 1.25)
    np.testing.assert_allclose(up[3], 1.296875)


def _save_checkpoint(arch: str, img_size: int, path: Path) -> dict[str, torch.Tensor]:
    """Save a random ``arch`` model at ``img_size`` in the official layout; return it as loaded.

    segment_anything initialises ``pos_embed`` and every ``rel_pos_*`` table to zeros, and any
    resize of zeros is zeros: the tables are filled with seeded noise first, so a wrong resize
    shows in the values, not only in the shapes.
    """
    sd = build_sam(arch, img_size).state_dict()
    gen = torch.Generator().manual_seed(5)
    for key, value in sd.items():
        if key.startswith("image_encoder.") and key.endswith(("pos_embed", "rel_pos_h",
                                                              "rel_pos_w")):
            value.copy_(torch.randn(value.shape, generator=gen))
    torch.save(sd, path)
    return torch.load(path, weights_only=True)


def _check_rel_pos(sd: dict, saved: dict, blocks: int, global_blocks: tuple[int, ...],
                   grid: int, window: int) -> None:
    """Each block's tables, as segment_anything's attention reads them (``get_rel_pos`` at the
    block's token span), equal what it reads from the checkpoint's tables at that span."""
    for i in range(blocks):
        span = grid if i in global_blocks else window
        for axis in ("h", "w"):
            key = f"image_encoder.blocks.{i}.attn.rel_pos_{axis}"
            got, old = sd[f"sam.{key}"], saved[key]
            assert got.shape[0] == 2 * span - 1, key
            if old.shape[0] == got.shape[0]:
                assert torch.equal(got, old), key  # windowed blocks: left untouched
            torch.testing.assert_close(get_rel_pos(span, span, got),
                                       get_rel_pos(span, span, old), rtol=1e-5, atol=1e-6,
                                       msg=lambda m, key=key: f"{key}: {m}")


@pytest.mark.parametrize("img_size", [128, 192, 512])
def test_tiny_checkpoint_into_other_sizes(tmp_path: Path, img_size: int) -> None:
    """A 256 px tiny SAM checkpoint into models at 128 px (½), 192 px (¾) and 512 px (2×)."""
    torch.manual_seed(3)
    path = tmp_path / "sam_tiny.pth"
    saved = _save_checkpoint("tiny", 256, path)
    model = SamSegmenter(build_sam("tiny", img_size, checkpoint=path)).eval()
    sd = model.state_dict()
    grid = img_size // 16

    pos = sd["sam.image_encoder.pos_embed"]
    assert pos.shape == (1, grid, grid, 64)
    torch.testing.assert_close(pos, _bicubic_oracle(saved["image_encoder.pos_embed"], grid),
                               rtol=1e-5, atol=1e-5)
    _check_rel_pos(sd, saved, 2, TINY_GLOBAL, grid, ARCHS["tiny"].window_size)

    # End to end: a same-size encoder holding the checkpoint's own 31-row relative tables,
    # which segment_anything resizes at run time, computes the loaded model's embedding.
    ref = build_sam("tiny", img_size)
    resized = {k for k, v in saved.items() if k.startswith("image_encoder.")
               and v.shape != ref.state_dict()[k].shape}
    assert resized == {"image_encoder.pos_embed"} | {
        f"image_encoder.blocks.{i}.attn.rel_pos_{a}" for i in TINY_GLOBAL for a in "hw"}
    ref.load_state_dict({k: v for k, v in saved.items() if k not in resized}, strict=False)
    with torch.no_grad():
        ref.image_encoder.pos_embed.copy_(_bicubic_oracle(saved["image_encoder.pos_embed"], grid))
        for i in TINY_GLOBAL:
            attn = ref.image_encoder.blocks[i].attn
            attn.rel_pos_h = torch.nn.Parameter(saved[f"image_encoder.blocks.{i}.attn.rel_pos_h"])
            attn.rel_pos_w = torch.nn.Parameter(saved[f"image_encoder.blocks.{i}.attn.rel_pos_w"])
        x = torch.randn(1, 3, img_size, img_size, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(model.sam.image_encoder(x), ref.image_encoder(x),
                                   rtol=1e-4, atol=1e-4)
        logits = model(torch.rand(1, 3, img_size, img_size) * 255)
    assert model.sam.prompt_encoder.image_embedding_size == (grid, grid)
    assert logits.shape == (1, 1, img_size, img_size) and torch.isfinite(logits).all()


def test_vit_b_1024_checkpoint_into_512_model(tmp_path: Path) -> None:
    """(The builder's fetch + verify + load path is covered at 1024 in test_checkpoints.)"""
    torch.manual_seed(11)
    path = tmp_path / "sam_vit_b_01ec64.pth"
    saved = _save_checkpoint("vit_b", 1024, path)  # the official layout
    model = SamSegmenter(build_sam("vit_b", 512, checkpoint=path)).eval()
    sd = model.state_dict()

    # absolute position embedding: 1×64×64×768 -> 1×32×32×768, bicubic
    assert sd["sam.image_encoder.pos_embed"].shape == (1, 32, 32, 768)
    torch.testing.assert_close(sd["sam.image_encoder.pos_embed"],
                               _bicubic_oracle(saved["image_encoder.pos_embed"], 32),
                               rtol=1e-5, atol=1e-5)

    # relative position tables: global blocks span the grid (2·64−1 -> 2·32−1 rows);
    # windowed blocks keep their 2·14−1 rows untouched
    for i in GLOBAL_BLOCKS:
        assert saved[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape == (127, 64)
    _check_rel_pos(sd, saved, 12, GLOBAL_BLOCKS, 32, 14)

    # other weights are the checkpoint's; the model runs at 512 px
    assert torch.equal(sd["sam.image_encoder.blocks.3.mlp.lin1.weight"],
                       saved["image_encoder.blocks.3.mlp.lin1.weight"])
    assert model.sam.prompt_encoder.image_embedding_size == (32, 32)
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 512, 512) * 255)
    assert logits.shape == (1, 1, 512, 512) and torch.isfinite(logits).all()
