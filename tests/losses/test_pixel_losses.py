"""BCE and soft Dice: known answers."""

from __future__ import annotations

import math

import pytest
import torch

from samlora.losses import bce_loss, soft_dice_loss


def _square(n: int = 32, lo: int = 8, hi: int = 24) -> torch.Tensor:
    t = torch.zeros(1, 1, n, n)
    t[..., lo:hi, lo:hi] = 1
    return t


def test_bce_hand_computed() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0, 3.0]).view(1, 1, 2, 2)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 2, 2)
    expected = (math.log(2) + math.log(1 + math.e**2) + math.log(1 + math.e**-1)
                + math.log(1 + math.e**-3)) / 4
    assert bce_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_dice_perfect_disjoint_and_per_image_mean() -> None:
    t = _square()
    perfect = (t * 2 - 1) * 30
    assert soft_dice_loss(perfect, t).item() == pytest.approx(0.0, abs=1e-6)
    disjoint = (0.5 - t) * 60  # predicts exactly the background
    assert soft_dice_loss(disjoint, t).item() == pytest.approx(1.0, abs=0.01)
    batch = soft_dice_loss(torch.cat([perfect, disjoint]), torch.cat([t, t]))
    assert batch.item() == pytest.approx(0.5, abs=0.01)


def test_dice_smoothing_on_empty_masks() -> None:
    empty = torch.zeros(1, 1, 8, 8)
    assert soft_dice_loss(empty - 40, empty).item() == pytest.approx(0.0, abs=1e-6)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        soft_dice_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="shape"):
        bce_loss(torch.zeros(16), torch.zeros(16))
