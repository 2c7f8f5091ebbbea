"""SAM2LoRA's loss terms: focal Tversky, batch-global soft Dice, IoU-prediction L1; known
answers, agreement with MONAI where MONAI defines the same loss, and the composite loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.losses import DiceLoss, TverskyLoss

from samlora.losses import (
    bce_loss,
    build_loss,
    focal_tversky_loss,
    iou_l1_loss,
    mask_iou,
    soft_dice_loss,
)

BIG = 40.0  # |logit| that makes sigmoid exactly 0 or 1 in float32


def _p_logits(p: list[float]) -> torch.Tensor:
    """Logits whose sigmoid is ``p``, as a 1×1×1×len(p) tensor."""
    t = torch.tensor(p, dtype=torch.float64)
    return torch.log(t / (1 - t)).float().view(1, 1, 1, -1)


def test_focal_tversky_hand_computed() -> None:
    logits = _p_logits([0.5, 0.5, 0.75, 0.25])
    target = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 1, 4)
    # TP = 0.5 + 0.75, FN = 0.5 + 0.25, FP = 0.5 + 0.25;
    # TI = (1.25 + 1) / (1.25 + 0.7·0.75 + 0.3·0.75 + 1) = 0.75; loss = 0.25 ** 0.75
    assert focal_tversky_loss(logits, target).item() == pytest.approx(0.25 ** 0.75, rel=1e-5)
    assert focal_tversky_loss(logits, target, gamma=1.0).item() == pytest.approx(0.25, rel=1e-5)


def test_focal_tversky_weighs_misses_above_false_alarms() -> None:
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 1, 4)
    miss = torch.tensor([BIG, -BIG, -BIG, -BIG]).view(1, 1, 1, 4)  # FN = 1, FP = 0
    extra = torch.tensor([BIG, BIG, BIG, -BIG]).view(1, 1, 1, 4)  # FN = 0, FP = 1
    # TI = 2/(2 + 0.7) and 3/(3 + 0.3)
    assert focal_tversky_loss(miss, target).item() == pytest.approx((1 - 2 / 2.7) ** 0.75,
                                                                     rel=1e-5)
    assert focal_tversky_loss(extra, target).item() == pytest.approx((1 - 3 / 3.3) ** 0.75,
                                                                      rel=1e-5)
    perfect = (target * 2 - 1) * BIG
    assert focal_tversky_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)


def test_focal_tversky_is_global_over_the_batch() -> None:
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(2, 1, 1, 2)
    logits = torch.full((2, 1, 1, 2), BIG)
    # whole batch: TP = 2, FN = 0, FP = 2 → TI = 3 / (2 + 0.6 + 1)
    expected = (1 - 3 / 3.6) ** 0.75
    assert focal_tversky_loss(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_soft_dice_per_image_and_global_hand_computed() -> None:
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(2, 1, 1, 2)
    logits = torch.full((2, 1, 1, 2), BIG)
    # per image: 1 − 5/5 = 0 and 1 − 1/3; global: 1 − (2·2 + 1)/(4 + 2 + 1) = 2/7
    assert soft_dice_loss(logits, target).item() == pytest.approx(1 / 3, rel=1e-6)
    assert soft_dice_loss(logits, target, over="batch").item() == pytest.approx(2 / 7, rel=1e-6)
    one = soft_dice_loss(logits[:1], target[:1])
    assert soft_dice_loss(logits[:1], target[:1], over="batch").item() == one.item()
    with pytest.raises(ValueError, match="over"):
        soft_dice_loss(logits, target, over="pixel")


def _vessel_batch(drive_vessels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    # a corner outside the FOV (no vessel) and a patch full of vessels: the two Dice
    # reductions differ on it
    t = torch.from_numpy(np.stack([drive_vessels[:128, :128],
                                   drive_vessels[300:428, 300:428]]).astype(np.float32))
    torch.manual_seed(0)
    t = t[:, None]
    return (t * 2 - 1) * 2 + torch.randn_like(t), t  # informative, noisy logits


def test_focal_tversky_equals_monai_tversky_to_the_gamma(drive_vessels: np.ndarray) -> None:
    logits, target = _vessel_batch(drive_vessels)
    # MONAI's alpha weighs false positives and beta false negatives: swapped names.
    monai = TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7, smooth_nr=1.0, smooth_dr=1.0,
                        batch=True)(logits, target)
    ours = focal_tversky_loss(logits, target, alpha=0.7, beta=0.3, gamma=0.75)
    assert ours.item() == pytest.approx(monai.item() ** 0.75, rel=1e-5)
    assert focal_tversky_loss(logits, target, gamma=1.0).item() == pytest.approx(monai.item(),
                                                                                  rel=1e-5)


def test_soft_dice_equals_monai_dice(drive_vessels: np.ndarray) -> None:
    logits, target = _vessel_batch(drive_vessels)
    for over, batch in (("image", False), ("batch", True)):
        monai = DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0, batch=batch)(logits, target)
        ours = soft_dice_loss(logits, target, over=over)
        assert ours.item() == pytest.approx(monai.item(), rel=1e-5), over
    assert target[0].sum() == 0 and target[1].sum() > 500
    assert abs(soft_dice_loss(logits, target).item()
               - soft_dice_loss(logits, target, over="batch").item()) > 0.02


def test_iou_l1_hand_computed_and_only_trains_the_iou_head() -> None:
    logits = torch.tensor([[BIG, BIG, -BIG, -BIG], [-BIG] * 4]).view(2, 1, 1, 4)
    logits.requires_grad_(True)
    target = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0] * 4]).view(2, 1, 1, 4)
    # image 0: intersection 1, union 3 → 1/3; image 1: both empty → 1
    torch.testing.assert_close(mask_iou(logits, target), torch.tensor([1 / 3, 1.0]))
    pred = torch.tensor([[0.5], [0.8]], requires_grad=True)
    loss = iou_l1_loss(pred, logits, target)
    assert loss.item() == pytest.approx((1 / 6 + 0.2) / 2, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(pred.grad, torch.tensor([[0.5], [-0.5]]))
    assert logits.grad is None
    with pytest.raises(ValueError, match="predicted IoU"):
        iou_l1_loss(torch.zeros(3), logits, target)


def test_build_loss_with_sam2lora_terms() -> None:
    cfg = {"bce": 1.0, "dice": 1.0, "cldice": 0.0, "cldice_iters": 10, "focal_tversky": 1.0,
           "iou_l1": 0.1, "dice_over": "batch"}
    torch.manual_seed(1)
    logits = torch.randn(2, 1, 16, 16, requires_grad=True)
    target = (torch.rand(2, 1, 16, 16) > 0.7).float()
    pred = torch.tensor([[0.3], [0.6]], requires_grad=True)
    loss = build_loss(cfg)
    assert loss.needs_iou
    total, terms = loss(logits, target, pred)
    expected = (bce_loss(logits, target) + soft_dice_loss(logits, target, over="batch")
                + focal_tversky_loss(logits, target) + 0.1 * iou_l1_loss(pred, logits, target))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(terms) == {"bce", "dice", "focal_tversky", "iou_l1", "loss"}
    total.backward()
    assert pred.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="predicted IoU"):
        loss(logits, target)
    with pytest.raises(ValueError, match="dice_over"):
        build_loss({**cfg, "dice_over": "pixel"})
    with pytest.raises(ValueError, match=">= 0"):
        build_loss({**cfg, "focal_tversky": -1})


def test_absent_new_weights_build_the_old_loss() -> None:
    old = {"bce": 1.0, "dice": 1.0, "cldice": 0.0, "cldice_iters": 10}
    loss = build_loss(old)
    assert not loss.needs_iou and set(loss.weights) == {"bce", "dice"}
    logits, target = torch.randn(1, 1, 8, 8), (torch.rand(1, 1, 8, 8) > 0.5).float()
    total, _ = loss(logits, target)
    assert total.item() == pytest.approx((bce_loss(logits, target)
                                          + soft_dice_loss(logits, target)).item(), rel=1e-6)
    only_ft = build_loss({**old, "bce": 0.0, "dice": 0.0, "focal_tversky": 2.0,
                          "tversky_gamma": 1.0})
    t2, _ = only_ft(logits, target)
    assert t2.item() == pytest.approx(2 * focal_tversky_loss(logits, target, gamma=1.0).item())
    assert math.isfinite(t2.item())
