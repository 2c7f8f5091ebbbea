"""Each paper's metric semantics: known answers, and checks against the libraries its code
calls (scikit-learn, scikit-image) or an independent transcription of its formula."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn import metrics as skm

from samlora.evaluation import reference_metrics as ref
from samlora.evaluation.boundary import contour
from tests.evaluation.conftest import drive_gif


@pytest.fixture(scope="module")
def drive_pair(mirror: Path) -> tuple[np.ndarray, np.ndarray]:
    """DRIVE test 01: first observer (reference) and second observer (prediction), cropped."""
    root = mirror / "DRIVE" / "test"
    gt = drive_gif(root / "1st_manual" / "01_manual1.gif")[200:400, 200:400]
    second = drive_gif(root / "2nd_manual" / "01_manual2.gif")[200:400, 200:400]
    return gt, second


def test_seglab_overlap_known_answers() -> None:
    got = ref.seglab_overlap(3, 1, 2)
    assert got["dice"] == pytest.approx(6 / 9) and got["iou"] == pytest.approx(0.5)
    assert got["precision"] == pytest.approx(0.75) and got["sensitivity"] == pytest.approx(0.6)
    # both empty: the ε form gives 0, not the 1.0 of our metrics
    assert ref.seglab_overlap(0, 0, 0) == {"dice": 0.0, "iou": 0.0, "precision": 0.0,
                                          "sensitivity": 0.0}


def test_seglab_bfscore_tolerance_is_one_cross_dilation() -> None:
    a = np.zeros((9, 9), bool)
    a[4, 4] = True
    beside, diagonal = np.zeros_like(a), np.zeros_like(a)
    beside[4, 5] = True
    diagonal[5, 5] = True
    assert ref.seglab_bfscore(a, a) == pytest.approx(1.0, abs=1e-5)
    assert ref.seglab_bfscore(a, beside) == pytest.approx(1.0, abs=1e-5)  # 4-neighbour: within
    assert ref.seglab_bfscore(a, diagonal) == 0.0  # not in the cross's reach
    assert ref.seglab_bfscore(a, beside, tol=0) == 0.0
    assert ref.seglab_bfscore(np.zeros_like(a), np.zeros_like(a)) == 0.0  # ε form: empty is 0


def test_seglab_cldice_known_answers() -> None:
    line = np.zeros((9, 9), bool)
    line[4, 1:8] = True
    assert ref.seglab_cldice(line, line) == pytest.approx(1.0, abs=1e-5)
    assert ref.seglab_cldice(np.zeros_like(line), line) == 0.0
    half = line.copy()
    half[4, 5:] = False  # skeleton of half lies in line (Tprec 1); 4 of 7 of line's covered
    assert ref.seglab_cldice(half, line) == pytest.approx(2 * 1 * (4 / 7) / (1 + 4 / 7),
                                                          abs=1e-5)


def test_ece_sample_sizes_follow_the_cap() -> None:
    assert ref.ece_sample_sizes(3, 5000, 12000) == [5000, 5000, 2000]
    sizes = ref.ece_sample_sizes(45)
    assert sizes[:40] == [5000] * 40 and sizes[40:] == [0] * 5 and sum(sizes) == 200_000


def test_ece_known_answers() -> None:
    gt = np.ones((10, 10), bool)
    rng = np.random.default_rng(0)
    c = ref.ece_components(np.full((10, 10), 0.7), gt, 50, rng)
    assert c[0] == 50 and ref.ece_from_components(c) == pytest.approx(0.3)
    # p = 0 falls in no bin but counts in N: a confident all-background map of a foreground
    # image scores ECE 0 in the reference code (ours would say 1)
    c0 = ref.ece_components(np.zeros((10, 10)), gt, 50, rng)
    assert c0[0] == 50 and c0[1:].sum() == 0 and ref.ece_from_components(c0) == 0.0
    # bins close on the right: 1/15 is bin 0, a hair above is bin 1
    c1 = ref.ece_components(np.full((4, 4), 1 / 15), gt[:4, :4], 8, rng)
    assert c1[1] == 8
    c2 = ref.ece_components(np.full((4, 4), 1 / 15 + 1e-9), gt[:4, :4], 8, rng)
    assert c2[2] == 8
    assert math.isnan(ref.ece_from_components(ref.ece_components(gt, gt, 0, rng)))


def test_ece_matches_a_transcription_of_the_reference_loop(drive_pair) -> None:
    """The reference code's ECE: for each bin, mask = (p > lo) & (p <= hi), ece +=
    mask.mean() * |acc - conf| over the sampled pixels, with torch's linspace edges."""
    import torch

    gt, _ = drive_pair
    rng = np.random.default_rng(7)
    prob = np.clip(rng.normal(0.3, 0.3, gt.shape) + 0.4 * gt, 0.0, 1.0)
    prob[:20] = 0.0
    c = ref.ece_components(prob, gt, 5000, np.random.default_rng(3))
    idx = np.random.default_rng(3).integers(0, prob.size, size=5000, endpoint=False)
    p = torch.from_numpy(prob.ravel()[idx]).float()
    t = torch.from_numpy(gt.ravel()[idx].astype(np.float32))
    bins = torch.linspace(0, 1, 16)
    expected = 0.0
    for i in range(15):
        mask = (p > bins[i]) & (p <= bins[i + 1])
        if mask.any():
            expected += float(mask.float().mean() * (t[mask].mean() - p[mask].mean()).abs())
    assert ref.ece_from_components(c) == pytest.approx(expected, abs=1e-5)


def test_medpy_hd95_pools_both_directions(drive_pair) -> None:
    gt, second = drive_pair
    cp, cg = np.argwhere(contour(second)), np.argwhere(contour(gt))
    d = cdist(cp, cg)  # brute force over every contour pair
    expected = np.percentile(np.concatenate([d.min(axis=1), d.min(axis=0)]), 95)
    assert ref.medpy_hd95(second, gt) == pytest.approx(expected)
    empty = np.zeros((10, 20), bool)
    assert ref.medpy_hd95(empty, empty) == pytest.approx(math.sqrt(500))  # medpy raises
    assert ref.medpy_hd95(empty, gt[:10, :20]) == pytest.approx(math.sqrt(500))


def test_sam2lora_metrics_match_scikit_learn(drive_pair) -> None:
    gt, second = drive_pair
    rng = np.random.default_rng(1)
    prob = np.clip(second * 0.8 + rng.random(gt.shape) * 0.3, 0.0, 1.0)
    got = ref.sam2lora_metrics(prob, gt)
    y, yhat = gt.ravel(), (prob > 0.5).ravel()
    assert got["f1"] == pytest.approx(skm.f1_score(y, yhat))
    assert got["dice"] == pytest.approx(skm.f1_score(y, yhat))
    assert got["iou"] == pytest.approx(skm.jaccard_score(y, yhat))
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, yhat))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, yhat))
    assert got["sensitivity"] == pytest.approx(skm.recall_score(y, yhat))
    assert got["specificity"] == pytest.approx(skm.recall_score(y, yhat, pos_label=0))
    assert got["precision"] == pytest.approx(skm.precision_score(y, yhat))
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, prob.ravel()))


def test_sam2lora_edge_cases_are_its_code_s() -> None:
    empty = np.zeros((8, 8), bool)
    got = ref.sam2lora_metrics(empty.astype(float), empty)
    assert got["iou"] == 0.0 and got["dice"] == 0.0 and got["f1"] == 0.0
    assert got["mcc"] == 0.0 and got["sensitivity"] == 0.0 and got["boundary_iou"] == 0.0
    assert got["accuracy"] == 1.0 and got["specificity"] == 1.0
    assert math.isnan(got["auc"]) and got["hd95"] == pytest.approx(math.hypot(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert skm.matthews_corrcoef(empty.ravel(), empty.ravel()) == 0.0
        assert skm.f1_score(empty.ravel(), empty.ravel(), zero_division=0) == 0.0


def test_sam2lora_boundary_iou_matches_scikit_image(drive_pair) -> None:
    from skimage.morphology import binary_erosion

    gt, second = drive_pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in scikit-image 0.26
        bp = second.astype(np.uint8) - binary_erosion(second.astype(np.uint8))
        bg = gt.astype(np.uint8) - binary_erosion(gt.astype(np.uint8))
    expected = np.logical_and(bp, bg).sum() / np.logical_or(bp, bg).sum()
    assert ref.sam2lora_boundary_iou(second, gt) == pytest.approx(expected)
    full = np.ones((6, 6), bool)  # the image border does not erode: no boundary at all
    assert ref.sam2lora_boundary_iou(full, full) == 0.0
