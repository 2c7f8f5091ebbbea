"""soft clDice and the composite loss built from params.yaml weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from samlora.losses import bce_loss, build_loss, soft_cldice_loss, soft_dice_loss

CFG = {"bce": 1.0, "dice": 1.0, "cldice": 0.5, "cldice_iters": 10}


def _vessels(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask[:256, :256].astype(np.float32))[None, None]


def test_identical_vessel_masks_give_zero(drive_vessels: np.ndarray) -> None:
    t = _vessels(drive_vessels)
    assert soft_cldice_loss((t * 2 - 1) * 30, t).item() == pytest.approx(0.0, abs=1e-4)


def _logits(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((mask.astype(np.float32) * 2 - 1) * 30)[None, None]


def test_thickness_errors_are_cheap_lost_vessels_are_not(drive_vessels: np.ndarray) -> None:
    t = _logits(drive_vessels).gt(0).float()
    assert soft_cldice_loss(-_logits(drive_vessels), t).item() > 0.95  # disjoint
    cross = ndimage.generate_binary_structure(2, 1)
    thick = _logits(ndimage.binary_dilation(drive_vessels, cross))
    thin = _logits(ndimage.binary_erosion(drive_vessels, cross))  # 1–2 px vessels vanish
    cl_thick, dice_thick = soft_cldice_loss(thick, t).item(), soft_dice_loss(thick, t).item()
    cl_thin = soft_cldice_loss(thin, t).item()
    assert cl_thick < 0.1 * dice_thick  # same centre lines: clDice barely moves
    assert cl_thin > 0.3 and cl_thin > 10 * cl_thick


def test_build_loss_weights_and_terms(drive_vessels: np.ndarray) -> None:
    t = _vessels(drive_vessels)
    torch.manual_seed(0)
    logits = torch.randn_like(t, requires_grad=True)
    total, terms = build_loss(CFG)(logits, t)
    expected = (bce_loss(logits, t) + soft_dice_loss(logits, t)
                + 0.5 * soft_cldice_loss(logits, t, iters=10))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(terms) == {"bce", "dice", "cldice", "loss"}
    assert terms["loss"] == pytest.approx(total.item())
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_cldice_gradient_flows() -> None:
    torch.manual_seed(0)
    t = torch.zeros(2, 1, 32, 32)
    t[..., 14:18, 2:30] = 1
    logits = torch.randn(2, 1, 32, 32, requires_grad=True)
    soft_cldice_loss(logits, t).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_zero_weight_terms_are_skipped_and_bad_configs_rejected() -> None:
    _, terms = build_loss({**CFG, "cldice": 0.0})(torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8))
    assert set(terms) == {"bce", "dice", "loss"}
    with pytest.raises(ValueError, match="lacks"):
        build_loss({"bce": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        build_loss({**CFG, "dice": -1.0})
    with pytest.raises(ValueError, match="not all 0"):
        build_loss({"bce": 0, "dice": 0, "cldice": 0, "cldice_iters": 10})
