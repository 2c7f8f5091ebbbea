"""Known answers for Dice, IoU, ROC AUC and clDice, and the DRIVE human-observer baseline."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samlora.evaluation.metrics import auc, cldice, compute_metrics, dice, iou


def _gif(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) >= 128


def _brute_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.fixture
def square() -> np.ndarray:
    m = np.zeros((10, 10), bool)
    m[2:6, 2:6] = True
    return m


@pytest.mark.parametrize("fn", [dice, iou, cldice])
def test_identical_is_one_and_disjoint_is_zero(fn, square: np.ndarray) -> None:
    assert fn(square, square) == 1.0
    other = np.zeros_like(square)
    other[7:9, 7:9] = True
    assert fn(square, other) == 0.0


@pytest.mark.parametrize("fn", [dice, iou, cldice])
def test_empty_edge_cases(fn, square: np.ndarray) -> None:
    empty = np.zeros_like(square)
    assert fn(empty, empty) == 1.0
    assert fn(square, empty) == 0.0
    assert fn(empty, square) == 0.0


def test_dice_and_iou_partial_overlap() -> None:
    pred = np.zeros((5, 5), bool)
    gt = np.zeros((5, 5), bool)
    pred[0, 0:5] = True  # 5 pixels in row 0 ...
    pred[1, 0] = True  # ... + 1 = 6
    gt[0, 1:5] = True  # 4 shared pixels
    gt[2, 0:2] = True  # + 2 = 6
    assert pred.sum() == 6 and gt.sum() == 6 and (pred & gt).sum() == 4
    assert dice(pred, gt) == pytest.approx(2 * 4 / (6 + 6))
    assert iou(pred, gt) == pytest.approx(4 / 8)


def test_auc_perfect_reversed_and_one_class() -> None:
    labels = np.array([[0, 0, 1, 1]], bool)
    scores = np.array([[0.1, 0.2, 0.7, 0.9]])
    assert auc(scores, labels) == 1.0
    assert auc(1 - scores, labels) == 0.0
    assert math.isnan(auc(scores, np.zeros_like(labels)))
    assert math.isnan(auc(scores, np.ones_like(labels)))


def test_auc_with_ties_hand_computed() -> None:
    # positives score 0.4, 0.8, 0.4; negatives 0.1, 0.4: 4 wins + 2 ties (½) of 6 pairs
    scores = np.array([[0.1, 0.4, 0.4, 0.8, 0.4]])
    labels = np.array([[0, 1, 0, 1, 1]], bool)
    assert auc(scores, labels) == pytest.approx(5 / 6)
    assert _brute_auc(scores.ravel(), labels.ravel()) == pytest.approx(5 / 6)


def test_auc_matches_pairwise_counting_with_many_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(12, 10)).astype(float)
    labels = rng.random((12, 10)) < 0.3
    assert auc(scores, labels) == pytest.approx(_brute_auc(scores.ravel(), labels.ravel()))


def test_cldice_line_cases() -> None:
    gt = np.zeros((20, 30), bool)
    gt[10, 5:25] = True  # 20-pixel, 1-pixel-wide line: its own skeleton
    shifted = np.zeros_like(gt)
    shifted[13, 5:25] = True  # parallel line 3 px away
    assert cldice(shifted, gt) == 0.0
    half = np.zeros_like(gt)
    half[10, 5:15] = True  # Tprec = 1, Tsens = 10/20 -> 2·1·0.5/1.5
    assert cldice(half, gt) == pytest.approx(2 / 3)


def test_cldice_of_identical_real_vessel_masks_is_one(mirror: Path) -> None:
    gt = _gif(mirror / "DRIVE/test/1st_manual/01_manual1.gif")
    fov = _gif(mirror / "DRIVE/test/mask/01_test_mask.gif")
    assert cldice(gt, gt, fov) == 1.0
    assert cldice(gt, gt) == 1.0


def test_pixels_outside_fov_have_no_effect(mirror: Path) -> None:
    gt = _gif(mirror / "DRIVE/test/1st_manual/02_manual1.gif")
    pred = _gif(mirror / "DRIVE/test/2nd_manual/02_manual2.gif")
    fov = _gif(mirror / "DRIVE/test/mask/02_test_mask.gif")
    prob = pred.astype(np.float32) * 0.9 + 0.05
    rng = np.random.default_rng(1)
    noisy_prob = np.where(fov, prob, rng.random(prob.shape))
    noisy_gt = np.where(fov, gt, rng.random(gt.shape) < 0.5)
    base = compute_metrics(prob, gt, fov)
    noisy = compute_metrics(noisy_prob, noisy_gt, fov)
    assert noisy == pytest.approx(base)
    assert compute_metrics(prob, gt, None) != pytest.approx(noisy)  # the FOV did matter


def test_compute_metrics_threshold_names_and_errors() -> None:
    prob = np.array([[0.2, 0.5, 0.8, 0.1]])
    gt = np.array([[0, 1, 1, 0]], bool)
    out = compute_metrics(prob, gt, None, threshold=0.5, names=("iou", "dice"))
    assert list(out) == ["iou", "dice"] and out["dice"] == 1.0  # prob >= threshold
    assert compute_metrics(prob, gt, None, threshold=0.6, names=("dice",))["dice"] == pytest.approx(
        2 / 3)
    with pytest.raises(ValueError, match="hd96"):
        compute_metrics(prob, gt, None, names=("dice", "hd96"))
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((3, 3), bool), np.zeros((3, 4), bool))


def test_drive_second_observer_matches_published_range(mirror: Path) -> None:
    scores = []
    for n in range(1, 21):
        test = mirror / "DRIVE/test"
        gt = _gif(test / f"1st_manual/{n:02d}_manual1.gif")
        obs2 = _gif(test / f"2nd_manual/{n:02d}_manual2.gif")
        fov = _gif(test / f"mask/{n:02d}_test_mask.gif")
        scores.append(compute_metrics(obs2.astype(np.float32), gt, fov, names=("dice", "iou")))
    mean_dice = float(np.mean([s["dice"] for s in scores]))
    assert 0.75 <= mean_dice <= 0.83, mean_dice  # published human Dice ≈ 0.79
    for s in scores:  # per image, IoU = Dice / (2 − Dice) holds exactly
        assert 0.7 < s["dice"] < 0.86
        assert s["iou"] == pytest.approx(s["dice"] / (2 - s["dice"]))
