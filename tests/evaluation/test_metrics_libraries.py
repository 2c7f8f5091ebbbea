"""Our metrics against scikit-learn, MONAI and scikit-image on real DRIVE test masks.

The reference is the 1st observer; the prediction is the 2nd observer's mask, and the
probability map is that mask blurred (many tied scores at 0 and a continuum elsewhere).
Tolerances: 1e-9 relative for counts-based and ranking metrics (float summation order),
1e-5 relative for the MONAI distances (MONAI works in float32), exact for Betti numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sklearn.calibration as sk_calibration
import sklearn.metrics as sk_metrics
from scipy import ndimage
from skimage.measure import euler_number

from samlora.evaluation import boundary, calibration, overlap, topology
from samlora.evaluation.metrics import auc, compute_metrics, dice

from .conftest import drive_gif

CASES = ("01", "07", "14", "20")


@pytest.fixture(scope="module", params=CASES)
def case(request, mirror: Path) -> dict[str, np.ndarray]:
    test = mirror / "DRIVE/test"
    n = request.param
    gt = drive_gif(test / f"1st_manual/{n}_manual1.gif")
    obs2 = drive_gif(test / f"2nd_manual/{n}_manual2.gif")
    fov = drive_gif(test / f"mask/{n}_test_mask.gif")
    prob = np.clip(ndimage.gaussian_filter(obs2.astype(np.float64), 1.5) * 1.3, 0, 1)
    return {"gt": gt, "pred": prob >= 0.5, "prob": prob, "fov": fov}


def test_overlap_metrics_match_sklearn(case) -> None:
    gt, pred, fov = case["gt"], case["pred"], case["fov"]
    y, yp = gt[fov], pred[fov]
    approx = {"rel": 1e-9, "abs": 1e-12}
    pairs = [(overlap.precision, sk_metrics.precision_score(y, yp)),
             (overlap.sensitivity, sk_metrics.recall_score(y, yp)),
             (overlap.specificity, sk_metrics.recall_score(y, yp, pos_label=False)),
             (overlap.accuracy, sk_metrics.accuracy_score(y, yp)),
             (overlap.mcc, sk_metrics.matthews_corrcoef(y, yp))]
    for ours, theirs in pairs:
        assert ours(pred, gt, fov) == pytest.approx(theirs, **approx), ours.__name__
    assert dice(pred, gt, fov) == pytest.approx(sk_metrics.f1_score(y, yp), **approx)


def test_score_metrics_match_sklearn(case) -> None:
    gt, prob, fov = case["gt"], case["prob"], case["fov"]
    y, s = gt[fov], prob[fov]
    assert auc(prob, gt, fov) == pytest.approx(sk_metrics.roc_auc_score(y, s), rel=1e-9)
    assert overlap.pr_auc(prob, gt, fov) == pytest.approx(
        sk_metrics.average_precision_score(y, s), rel=1e-9)
    q = np.round(prob, 1)  # heavy ties: the threshold grouping must agree too
    assert overlap.pr_auc(q, gt, fov) == pytest.approx(
        sk_metrics.average_precision_score(y, q[fov]), rel=1e-9)


def test_reliability_bins_match_sklearn_calibration_curve(case) -> None:
    gt, prob, fov = case["gt"], case["prob"], case["fov"]
    curve = calibration.reliability_curve(prob, gt, fov)
    prob_true, prob_pred = sk_calibration.calibration_curve(
        gt[fov], prob[fov], n_bins=15, strategy="uniform")
    full = curve["count"] > 0
    assert curve["accuracy"][full] == pytest.approx(prob_true, rel=1e-9)
    assert curve["confidence"][full] == pytest.approx(prob_pred, rel=1e-9)
    counts = curve["count"][full]
    expected = float(np.sum(counts * np.abs(prob_true - prob_pred)) / counts.sum())
    assert calibration.ece(prob, gt, fov) == pytest.approx(expected, rel=1e-9)


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
def test_distances_match_monai(case) -> None:
    import monai.metrics as monai_metrics
    import torch
    gt, pred, fov = case["gt"] & case["fov"], case["pred"] & case["fov"], case["fov"]
    t = lambda m: torch.from_numpy(m[None, None].copy())  # noqa: E731  (B, C, H, W)
    hd = monai_metrics.compute_hausdorff_distance(t(pred), t(gt), include_background=True,
                                                  percentile=95).item()
    asd = monai_metrics.compute_average_surface_distance(t(pred), t(gt), include_background=True,
                                                         symmetric=True).item()
    assert boundary.hd95(case["pred"], case["gt"], fov) == pytest.approx(hd, rel=1e-5)
    assert boundary.assd(case["pred"], case["gt"], fov) == pytest.approx(asd, rel=1e-5)
    hd_mm = monai_metrics.compute_hausdorff_distance(t(pred), t(gt), include_background=True,
                                                     percentile=95, spacing=0.025).item()
    out = compute_metrics(case["prob"], case["gt"], fov, names=("hd95_mm",), pixel_mm=0.025)
    assert out["hd95_mm"] == pytest.approx(hd_mm, rel=1e-5)


def test_betti_numbers_match_skimage_euler_and_scipy_label(case) -> None:
    for mask in (case["gt"] & case["fov"], case["pred"] & case["fov"]):
        b0, b1 = topology.betti_numbers(mask)
        assert b0 == ndimage.label(mask, structure=np.ones((3, 3)))[1]
        assert b1 == b0 - euler_number(mask, connectivity=2)  # χ = β0 − β1
        assert b1 > 0  # real vessel trees close loops


def test_boundary_band_matches_iterated_square_erosion(case) -> None:
    # Cheng et al.'s reference pads with background and erodes d times with a 3×3 square
    mask = case["gt"] & case["fov"]
    width = max(1, round(0.02 * np.hypot(*mask.shape)))
    eroded = ndimage.binary_erosion(np.pad(mask, 1), np.ones((3, 3)), iterations=width)[1:-1, 1:-1]
    assert np.array_equal(boundary.boundary_band(mask, width), mask & ~eroded)
    assert np.array_equal(boundary.boundary_band(mask, 2), mask & ~ndimage.binary_erosion(
        np.pad(mask, 1), np.ones((3, 3)), iterations=2)[1:-1, 1:-1])


def test_bfscore_matches_kdtree_matching(case) -> None:
    from scipy.spatial import cKDTree

    gt, pred, fov = case["gt"] & case["fov"], case["pred"] & case["fov"], case["fov"]
    cg, cp = np.argwhere(boundary.contour(gt)), np.argwhere(boundary.contour(pred))
    for tol in (1.0, 2.0):
        prec = np.mean(cKDTree(cg).query(cp)[0] <= tol)
        rec = np.mean(cKDTree(cp).query(cg)[0] <= tol)
        assert boundary.bfscore(case["pred"], case["gt"], fov, tolerance=tol) == pytest.approx(
            2 * prec * rec / (prec + rec), rel=1e-12)
