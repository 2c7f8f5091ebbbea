"""The TopoLoRA-SAM reference code's (Seglab's) loss forms: ``loss.cldice_form`` and
``loss.dice_smooth``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samlora.losses import build_loss, soft_cldice_loss, soft_dice_loss, soft_skeleton
from samlora.losses.cldice import seglab_cldice_loss, seglab_soft_skeleton

EPS = 1e-6
BASE = {"bce": 0.0, "dice": 0.0, "cldice": 1.0, "cldice_iters": 10}


# -- an independent reference, written from Seglab's formulas with max-pools -------------------

def _ref_erode(x: torch.Tensor) -> torch.Tensor:
    return torch.minimum(-F.max_pool2d(-x, (3, 1), 1, (1, 0)), -F.max_pool2d(-x, (1, 3), 1, (0, 1)))


def _ref_skeleton(img: torch.Tensor, iters: int) -> torch.Tensor:
    skel = torch.zeros_like(img)
    for _ in range(iters):
        opened = F.max_pool2d(_ref_erode(img), 3, 1, 1)
        delta = F.relu(img - opened)
        skel = skel + F.relu(delta - skel * delta)
        img = _ref_erode(img)
    return skel


def _ref_cldice(p: torch.Tensor, t: torch.Tensor, iters: int) -> torch.Tensor:
    sp, st = _ref_skeleton(p, iters), _ref_skeleton(t, iters)
    tprec = (sp * t).sum(dim=(1, 2, 3)) / (sp.sum(dim=(1, 2, 3)) + EPS)
    tsens = (st * p).sum(dim=(1, 2, 3)) / (st.sum(dim=(1, 2, 3)) + EPS)
    return 1 - ((2 * tprec * tsens + EPS) / (tprec + tsens + EPS)).mean()


def _vessels(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask[:256, :256].astype(np.float32))[None, None]


# -- the skeleton -------------------------------------------------------------------------------

def test_seglab_skeleton_hand_worked_shapes() -> None:
    line = torch.zeros(1, 1, 7, 7)
    line[..., 3, 1:6] = 1  # 1 px wide: the first erosion empties it, so the skeleton is itself
    square = torch.zeros(1, 1, 7, 7)
    square[..., 2:5, 2:5] = 1  # 3×3: opening 1 keeps it whole, opening 2 leaves the centre
    centre = torch.zeros(1, 1, 7, 7)
    centre[..., 3, 3] = 1
    assert torch.equal(seglab_soft_skeleton(line, 0), torch.zeros_like(line))
    for n in (1, 2, 10):
        assert torch.equal(seglab_soft_skeleton(line, n), line)
    assert torch.equal(seglab_soft_skeleton(square, 1), torch.zeros_like(square))
    for n in (2, 3, 10):
        assert torch.equal(seglab_soft_skeleton(square, n), centre)
    assert torch.equal(seglab_soft_skeleton(torch.full((1, 1, 7, 7), 0.3), 10),
                       torch.zeros(1, 1, 7, 7))  # constant image: opening = image
    with pytest.raises(ValueError, match="iters"):
        seglab_soft_skeleton(line, -1)


@pytest.mark.parametrize("iters", [1, 2, 5, 10])
def test_seglab_skeleton_equals_ours_with_one_iteration_fewer(iters: int) -> None:
    torch.manual_seed(iters)
    x = torch.rand(2, 1, 29, 37, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 1, 29, 37, dtype=torch.float64)
    a, b = seglab_soft_skeleton(x, iters), soft_skeleton(x, iters - 1)
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad((a * w).sum(), x)
    (gb,) = torch.autograd.grad((b * w).sum(), x)
    assert torch.equal(ga, gb)
    # and it matches the max-pool reference, values and gradients
    r = _ref_skeleton(x, iters)
    torch.testing.assert_close(a, r, rtol=0, atol=0)
    (gr,) = torch.autograd.grad((r * w).sum(), x)
    torch.testing.assert_close(ga, gr)


# -- the loss -----------------------------------------------------------------------------------

def _line_on_square(iters: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Prediction: a 5 px line of p = 0.8 through a 3×3 target square; the hand-worked loss."""
    t = torch.zeros(1, 1, 7, 7)
    t[..., 2:5, 2:5] = 1
    logits = torch.full((1, 1, 7, 7), -50.0)  # p ≈ 2e-22
    logits[..., 3, 1:6] = math.log(0.8 / 0.2)
    # S(p) = the line (0.8 on 5 px, 3 of them in the target); S(t) = the centre (iters ≥ 2)
    tprec = 3 * 0.8 / (5 * 0.8 + EPS)
    tsens = 0.8 / (1 + EPS) if iters >= 2 else 0.0
    return logits, t, 1 - (2 * tprec * tsens + EPS) / (tprec + tsens + EPS)


@pytest.mark.parametrize("iters", [1, 2, 10])
def test_seglab_cldice_hand_worked_value(iters: int) -> None:
    logits, t, expected = _line_on_square(iters)
    got = seglab_cldice_loss(logits, t, iters=iters).item()
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    if iters >= 2:
        assert got == pytest.approx(1 - 0.96 / 1.4, rel=1e-5)


def test_seglab_cldice_matches_reference(drive_vessels: np.ndarray) -> None:
    torch.manual_seed(0)
    t = (torch.rand(3, 1, 24, 40) > 0.6).float()
    logits = torch.randn(3, 1, 24, 40) * 3
    for iters in (1, 3, 10):
        assert seglab_cldice_loss(logits, t, iters=iters).item() == pytest.approx(
            _ref_cldice(torch.sigmoid(logits), t, iters).item(), rel=1e-5, abs=1e-7)
    tv = _vessels(drive_vessels)
    logits = torch.randn_like(tv) * 2 + (tv * 2 - 1) * 2
    assert seglab_cldice_loss(logits, tv).item() == pytest.approx(
        _ref_cldice(torch.sigmoid(logits), tv, 10).item(), rel=1e-5)


def test_seglab_cldice_empty_prediction_and_empty_target(drive_vessels: np.ndarray) -> None:
    """All-background logits −20 on DRIVE vessels: the Seglab form gives ≈ 0.00206, ours ≈ 1."""
    for t in (_vessels(drive_vessels), torch.from_numpy(drive_vessels.astype(np.float32))[None, None]):
        logits = torch.full_like(t, -20.0)
        p = 1 / (1 + math.exp(20.0))  # 2.06e-9
        assert torch.equal(seglab_soft_skeleton(torch.sigmoid(logits), 10), torch.zeros_like(t))
        s = _ref_skeleton(t, 10).sum().item()  # Tprec = 0, Tsens = p·S/(S + ε)
        expected = 1 - EPS / (p * s / (s + EPS) + EPS)
        seglab, ours = seglab_cldice_loss(logits, t).item(), soft_cldice_loss(logits, t).item()
        assert seglab == pytest.approx(expected, rel=1e-4)
        assert seglab == pytest.approx(0.002057, abs=1e-6)
        assert ours > 0.99 and ours > 400 * seglab  # ours 0.9989 (crop), 0.9998 (whole image)
    # the form rewards confidence in the empty output: −30 gives ≈ 0, −10 gives ≈ 0.978
    assert seglab_cldice_loss(torch.full_like(t, -30.0), t).item() < 1e-5
    assert seglab_cldice_loss(torch.full_like(t, -10.0), t).item() == pytest.approx(0.978, abs=1e-3)
    # an empty target costs nothing, whatever the prediction
    torch.manual_seed(0)
    empty = torch.zeros(2, 1, 32, 32)
    assert seglab_cldice_loss(torch.randn(2, 1, 32, 32) * 5, empty).item() == pytest.approx(0.0, abs=1e-6)
    # a perfect binary prediction gives ≈ 0
    tv = _vessels(drive_vessels)
    assert seglab_cldice_loss((tv * 2 - 1) * 30, tv).item() == pytest.approx(0.0, abs=1e-4)


def test_seglab_cldice_gradient_flows() -> None:
    torch.manual_seed(0)
    t = torch.zeros(2, 1, 32, 32)
    t[..., 14:18, 2:30] = 1
    logits = torch.randn(2, 1, 32, 32, requires_grad=True)
    seglab_cldice_loss(logits, t).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same"):
        seglab_cldice_loss(logits[:, :, :8], t)


# -- the Dice smoothing and build_loss ----------------------------------------------------------

def test_dice_smooth_seglab_eps() -> None:
    dice_only = {"bce": 0.0, "dice": 1.0, "cldice": 0.0, "cldice_iters": 10, "dice_smooth": 1e-6}
    empty = torch.zeros(1, 1, 8, 8)
    total, _ = build_loss(dice_only)(torch.full_like(empty, -40.0), empty)  # Σp ≈ 3e-16 ≪ ε
    assert total.item() == pytest.approx(0.0, abs=1e-6)
    # two images, per-image Dice then the mean, by hand
    probs = [[0.9, 0.2, 0.7, 0.1], [0.3, 0.6, 0.05, 0.5]]
    targets = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
    logits = torch.logit(torch.tensor(probs, dtype=torch.float64)).float().view(2, 1, 2, 2)
    t = torch.tensor(targets).view(2, 1, 2, 2)

    def hand(s: float) -> float:
        dice = [(2 * sum(a * b for a, b in zip(p, q)) + s) / (sum(p) + sum(q) + s)
                for p, q in zip(probs, targets)]
        return 1 - sum(dice) / len(dice)

    for smooth in (1e-6, 1.0):
        total, terms = build_loss({**dice_only, "dice_smooth": smooth})(logits, t)
        assert total.item() == pytest.approx(hand(smooth), rel=1e-6)
        assert terms["dice"] == pytest.approx(soft_dice_loss(logits, t, smooth=smooth).item())
    assert hand(1e-6) != pytest.approx(hand(1.0), rel=1e-3)
    # the default is ours (smooth 1)
    default, _ = build_loss({k: v for k, v in dice_only.items() if k != "dice_smooth"})(logits, t)
    assert default.item() == pytest.approx(hand(1.0), rel=1e-6)


def test_build_loss_cldice_form(drive_vessels: np.ndarray) -> None:
    t = _vessels(drive_vessels)
    torch.manual_seed(0)
    logits = torch.randn_like(t, requires_grad=True)
    _, ours = build_loss(BASE)(logits, t)
    assert ours["cldice"] == pytest.approx(soft_cldice_loss(logits, t, iters=10).item())
    _, named = build_loss({**BASE, "cldice_form": "samlora"})(logits, t)
    assert named == ours
    total, seglab = build_loss({**BASE, "cldice_form": "seglab", "cldice_iters": 7})(logits, t)
    assert seglab["cldice"] == pytest.approx(seglab_cldice_loss(logits, t, iters=7).item())
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    empty = torch.full_like(t, -20.0)  # where the forms part ways
    _, ours = build_loss(BASE)(empty, t)
    _, seglab = build_loss({**BASE, "cldice_form": "seglab"})(empty, t)
    assert ours["cldice"] > 0.99 and seglab["cldice"] < 0.01


@pytest.mark.parametrize(("key", "value"), [("cldice_form", "clDice"), ("cldice_form", None),
                                            ("dice_smooth", 0.0), ("dice_smooth", -1.0),
                                            ("dice_smooth", "1e-6"), ("dice_smooth", True)])
def test_build_loss_rejects_bad_forms(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"loss.{key}"):
        build_loss({**BASE, key: value})
