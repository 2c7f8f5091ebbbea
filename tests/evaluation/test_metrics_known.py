"""Known answers on tiny hand-made masks for the overlap, AP, distance, boundary, Betti and
calibration metrics, and their edge cases (each returns a value, never raises)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samlora.evaluation import boundary, calibration, overlap, topology
from samlora.evaluation.metrics import (ALL_METRICS, METRIC_NAMES, check_metric_names,
                                        compute_metrics)


def _line(row: int, c0: int, c1: int, shape=(20, 30)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[row, c0:c1] = True
    return m


def _square(r0: int, r1: int, shape=(10, 10)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[r0:r1, r0:r1] = True
    return m


@pytest.fixture
def partial() -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.zeros((5, 5), bool), np.zeros((5, 5), bool)
    pred[0, 0:5] = True
    pred[1, 0] = True
    gt[0, 1:5] = True
    gt[2, 0:2] = True
    return pred, gt  # TP 4, FP 2, FN 2, TN 17


def test_confusion_metrics_hand_computed(partial) -> None:
    pred, gt = partial
    assert overlap.confusion(pred, gt) == (4, 2, 2, 17)
    assert overlap.precision(pred, gt) == pytest.approx(4 / 6)
    assert overlap.sensitivity(pred, gt) == pytest.approx(4 / 6)
    assert overlap.specificity(pred, gt) == pytest.approx(17 / 19)
    assert overlap.accuracy(pred, gt) == pytest.approx(21 / 25)
    assert overlap.mcc(pred, gt) == pytest.approx((4 * 17 - 2 * 2) / math.sqrt(6 * 6 * 19 * 19))
    assert overlap.mcc(~gt, gt) == pytest.approx(-1.0)


def test_confusion_metrics_inside_fov_only(partial) -> None:
    pred, gt = partial
    fov = np.zeros_like(pred)
    fov[0] = True  # row 0 only: TP 4, FP 1, FN 0, TN 0
    assert overlap.confusion(pred, gt, fov) == (4, 1, 0, 0)
    assert overlap.precision(pred, gt, fov) == pytest.approx(4 / 5)
    assert overlap.specificity(pred, gt, fov) == 0.0
    assert overlap.mcc(pred, gt, fov) == 0.0  # TN+FN = 0 and pred != gt


@pytest.mark.parametrize("fn", [overlap.precision, overlap.sensitivity, overlap.specificity,
                                overlap.accuracy, overlap.mcc])
def test_confusion_edge_cases(fn) -> None:
    empty, sq = np.zeros((6, 6), bool), _square(1, 3, (6, 6))
    assert fn(empty, empty) == 1.0  # both empty: exact
    assert fn(sq, sq) == 1.0
    full = np.ones((6, 6), bool)
    assert fn(full, full) == 1.0  # all foreground, exact
    assert fn(sq, sq, np.zeros((6, 6), bool)) == 1.0  # empty FOV


def test_confusion_one_empty() -> None:
    empty, sq = np.zeros((6, 6), bool), _square(1, 3, (6, 6))
    assert overlap.precision(empty, sq) == 0.0 and overlap.sensitivity(empty, sq) == 0.0
    assert overlap.precision(sq, empty) == 0.0 and overlap.sensitivity(sq, empty) == 0.0
    assert overlap.specificity(empty, sq) == 1.0  # no false positive
    assert overlap.mcc(empty, sq) == 0.0 and overlap.mcc(sq, empty) == 0.0


def test_pr_auc_hand_computed() -> None:
    s = np.array([[0.9, 0.8, 0.7, 0.6]])
    y = np.array([[1, 0, 1, 0]], bool)
    assert overlap.pr_auc(s, y) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    ties = np.array([[0.5, 0.5, 0.2]])  # the tie enters as one threshold: P=.5 at R=.5
    assert overlap.pr_auc(ties, np.array([[1, 0, 1]], bool)) == pytest.approx(0.25 + 1 / 3)
    assert math.isnan(overlap.pr_auc(s, np.zeros_like(y)))
    assert overlap.pr_auc(s, np.ones_like(y)) == 1.0
    # the FOV drops the 0.8 negative: both positives rank first
    assert overlap.pr_auc(s, y, np.array([[True, False, True, True]])) == 1.0


def test_hd95_assd_lines() -> None:
    gt = _line(10, 5, 25)
    assert boundary.hd95(_line(13, 5, 25), gt) == pytest.approx(3.0)
    assert boundary.assd(_line(13, 5, 25), gt) == pytest.approx(3.0)
    half = _line(10, 5, 15)  # pred→gt all 0; gt→pred ten 0s and 1..10
    assert boundary.hd95(half, gt) == pytest.approx(9.05)  # 95th pct of [0]*10+[1..10]
    assert boundary.assd(half, gt) == pytest.approx(55 / 30)
    assert boundary.hd95(gt, gt) == 0.0 and boundary.assd(gt, gt) == 0.0


def test_distance_uses_contours_not_interiors() -> None:
    gt = _square(2, 8, (12, 12))  # 6×6 block: contour = ring, interior ignored
    pred = _square(2, 8, (12, 12))
    pred[4:6, 4:6] = False  # a 2×2 hole: its rim is contour, 1 px inside gt's ring
    d = boundary.surface_distances(pred, gt)
    assert d is not None and d[1].max() == 0.0  # every gt contour pixel is on pred's
    assert d[0].max() == pytest.approx(1.0) and len(d[0]) == 20 + 8  # ring + hole rim


def test_distance_edge_cases() -> None:
    empty, gt = np.zeros((20, 30), bool), _line(10, 5, 25)
    for fn in (boundary.hd95, boundary.assd):
        assert fn(empty, empty) == 0.0
        assert fn(empty, gt) == pytest.approx(math.hypot(20, 30))
        assert fn(gt, empty) == pytest.approx(math.hypot(20, 30))
    fov = np.zeros_like(gt)
    fov[:, :15] = True  # restrict to the left half: both halves coincide there
    assert boundary.hd95(_line(10, 5, 15), gt, fov) == 0.0


def test_mm_variants_and_shared_distances() -> None:
    gt = _line(10, 5, 25).astype(np.float32)
    prob = _line(13, 5, 25).astype(np.float32)
    names = ("hd95", "assd", "hd95_mm", "assd_mm")
    out = compute_metrics(prob, gt > 0, None, names=names, pixel_mm=0.5)
    assert out == pytest.approx({"hd95": 3.0, "assd": 3.0, "hd95_mm": 1.5, "assd_mm": 1.5})
    no_mm = compute_metrics(prob, gt > 0, None, names=names)
    assert math.isnan(no_mm["hd95_mm"]) and math.isnan(no_mm["assd_mm"])
    assert no_mm["hd95"] == 3.0


def test_boundary_band_and_boundary_iou() -> None:
    full = np.ones((5, 5), bool)  # image border counts as background
    assert boundary.boundary_band(full, 1).sum() == 16
    assert boundary.boundary_band(full, 2).sum() == 24
    gt, pred = _square(2, 6), _square(1, 7)  # 4×4 inside 6×6, on a 10×10 image
    # ratio 0.15 · √200 = 2.12 → width 2: B(G) = all 16, B(P) = 36 − 4 = 32, ∩ = 12, ∪ = 36
    assert boundary.boundary_iou(pred, gt, dilation_ratio=0.15) == pytest.approx(12 / 36)
    # default ratio: width max(1, round(0.28)) = 1: the two rings do not touch
    assert boundary.boundary_iou(pred, gt) == 0.0
    assert boundary.boundary_iou(gt, gt) == 1.0
    empty = np.zeros_like(gt)
    assert boundary.boundary_iou(empty, empty) == 1.0
    assert boundary.boundary_iou(gt, empty) == 0.0 and boundary.boundary_iou(empty, gt) == 0.0


def test_bfscore_tolerance() -> None:
    gt = _line(10, 5, 25)
    assert boundary.bfscore(_line(11, 5, 25), gt) == 1.0  # 1 px away: within tolerance 1
    assert boundary.bfscore(_line(12, 5, 25), gt) == 0.0
    assert boundary.bfscore(_line(12, 5, 25), gt, tolerance=2) == 1.0
    # half line: P = 1, R = 11/20 (cols 5..15 are within 1 px of it)
    assert boundary.bfscore(_line(10, 5, 15), gt) == pytest.approx(2 * 0.55 / 1.55)
    empty = np.zeros_like(gt)
    assert boundary.bfscore(empty, empty) == 1.0
    assert boundary.bfscore(gt, empty) == 0.0 and boundary.bfscore(empty, gt) == 0.0


def test_betti_numbers_connectivity() -> None:
    ring = _square(1, 8)
    ring[3:6, 3:6] = False
    assert topology.betti_numbers(ring) == (1, 1)
    diamond = np.zeros((5, 5), bool)  # 8-connected loop around (2, 2), a 4-connected hole
    diamond[[1, 2, 2, 3], [2, 1, 3, 2]] = True
    assert topology.betti_numbers(diamond) == (1, 1)
    diagonal = np.eye(4, dtype=bool)
    assert topology.betti_numbers(diagonal) == (1, 0)
    two = _square(0, 2) | _square(5, 8)
    assert topology.betti_numbers(two) == (2, 0)
    edge_hole = np.ones((4, 4), bool)
    edge_hole[0, 1] = False  # background on the border: outside, not a hole
    assert topology.betti_numbers(edge_hole) == (1, 0)
    assert topology.betti_numbers(np.zeros((3, 3), bool)) == (0, 0)


def test_betti_errors_and_fov() -> None:
    ring = _square(1, 8)
    ring[3:6, 3:6] = False
    filled, two = _square(1, 8), _square(0, 2) | _square(5, 8)
    assert topology.betti1_error(ring, filled) == 1.0
    assert topology.betti0_error(ring, filled) == 0.0
    assert topology.betti0_error(two, filled) == 1.0
    fov = np.ones_like(ring)
    fov[:, 4:] = False  # cuts the ring open: no hole left inside the FOV
    assert topology.betti1_error(ring, filled, fov) == 0.0
    empty = np.zeros_like(ring)
    assert topology.betti0_error(empty, empty) == 0.0 and topology.betti1_error(empty, empty) == 0.0


def test_ece_and_reliability_hand_computed() -> None:
    prob = np.array([[0.05, 0.05, 0.95, 0.95, 0.5, 0.5]])
    gt = np.array([[0, 1, 1, 1, 1, 0]], bool)
    curve = calibration.reliability_curve(prob, gt)
    assert curve["count"].sum() == 6 and curve["count"][[0, 7, 14]].tolist() == [2, 2, 2]
    assert curve["confidence"][[0, 7, 14]] == pytest.approx([0.05, 0.5, 0.95])
    assert curve["accuracy"][[0, 7, 14]] == pytest.approx([0.5, 0.5, 1.0])
    assert np.isnan(curve["accuracy"][1]) and len(curve["edges"]) == 16
    assert calibration.ece(prob, gt) == pytest.approx((2 * 0.45 + 2 * 0.05) / 6)
    edge = np.array([[1 / 15, 0.0, 1.0]])  # right-closed bins: 1/15 and 0 in bin 0, 1 in 14
    counts = calibration.reliability_curve(edge, np.zeros_like(edge, bool))["count"]
    assert counts[[0, 14]].tolist() == [2, 1]
    assert calibration.ece(gt.astype(float), gt) == 0.0
    assert math.isnan(calibration.ece(prob, gt, np.zeros_like(gt)))


def test_every_metric_is_selectable_and_edge_cases_return_values() -> None:
    assert check_metric_names(ALL_METRICS) == list(ALL_METRICS)
    assert METRIC_NAMES == ("dice", "iou", "auc", "cldice")  # default unchanged
    gt = _square(2, 6)
    for prob in (np.zeros((10, 10)), gt * 0.9, np.ones((10, 10))):
        for g in (gt, np.zeros_like(gt)):
            out = compute_metrics(prob, g, None, names=ALL_METRICS, pixel_mm=0.01)
            assert list(out) == list(ALL_METRICS)
            assert all(isinstance(v, float) for v in out.values())


def test_compute_metrics_shared_distances_equal_direct_calls() -> None:
    gt = _line(10, 5, 25)
    prob = (_line(10, 5, 15) | _line(14, 3, 9)).astype(np.float32)
    out = compute_metrics(prob, gt, None, names=("bfscore", "hd95", "assd"))
    pred = prob >= 0.5
    assert out == {"bfscore": boundary.bfscore(pred, gt), "hd95": boundary.hd95(pred, gt),
                   "assd": boundary.assd(pred, gt)}
    empty = compute_metrics(np.zeros((20, 30)), gt, None, names=("bfscore", "hd95"))
    assert empty == {"bfscore": 0.0, "hd95": pytest.approx(math.hypot(20, 30))}
