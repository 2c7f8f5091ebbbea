"""Confusion-matrix metrics of a thresholded mask and average precision of a score map.

Everything is counted inside the FOV (``fov=None``: the whole image). With TP, FP, FN, TN
the pixel counts there:

- precision TP/(TP+FP), sensitivity (recall) TP/(TP+FN), specificity TN/(TN+FP),
  accuracy (TP+TN)/N, and Matthews' correlation coefficient
  (TP·TN − FP·FN)/√((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
- Edge cases, never raised: when a denominator is 0 the value is 1.0 if the prediction
  equals the ground truth inside the FOV (e.g. both empty: a correct "nothing here", as for
  Dice) and 0.0 otherwise. An empty FOV therefore scores 1.0 everywhere.
- ``pr_auc`` is average precision in scikit-learn's definition (no interpolation):
  AP = Σ_n (R_n − R_{n−1})·P_n over the distinct score thresholds taken in decreasing
  order; ``nan`` when the FOV holds no ground-truth positive (recall is undefined).
"""

from __future__ import annotations

import math

import numpy as np

from samlora.evaluation._fov import check_shapes, in_fov


def confusion(pred: np.ndarray, gt: np.ndarray,
              fov: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """``(TP, FP, FN, TN)`` pixel counts of ``pred`` against ``gt`` inside the FOV."""
    check_shapes(pred, gt, fov)
    p, g = in_fov(pred.astype(bool), fov), in_fov(gt.astype(bool), fov)
    tp = int(np.count_nonzero(p & g))
    n_p, n_g = int(np.count_nonzero(p)), int(np.count_nonzero(g))
    fp, fn = n_p - tp, n_g - tp
    return tp, fp, fn, p.size - tp - fp - fn


def _ratio(num: float, den: float, exact: bool) -> float:
    if den == 0:
        return 1.0 if exact else 0.0
    return num / den


def precision(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """TP/(TP+FP) inside the FOV; with no predicted positive: 1.0 if gt is empty too, else 0.0."""
    tp, fp, fn, _ = confusion(pred, gt, fov)
    return _ratio(tp, tp + fp, fp + fn == 0)


def sensitivity(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Recall TP/(TP+FN) inside the FOV; with no gt positive: 1.0 if pred is empty too, else 0.0."""
    tp, fp, fn, _ = confusion(pred, gt, fov)
    return _ratio(tp, tp + fn, fp + fn == 0)


def specificity(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """TN/(TN+FP) inside the FOV; with no gt negative: 1.0 if pred has no FN either, else 0.0."""
    _, fp, fn, tn = confusion(pred, gt, fov)
    return _ratio(tn, tn + fp, fp + fn == 0)


def accuracy(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """(TP+TN)/N inside the FOV; 1.0 for an empty FOV."""
    tp, fp, fn, tn = confusion(pred, gt, fov)
    return _ratio(tp + tn, tp + fp + fn + tn, True)


def mcc(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Matthews' correlation coefficient in [−1, 1] inside the FOV.

    When a marginal is 0 (pred or gt constant inside the FOV, where the formula is 0/0) the
    value is 1.0 if pred equals gt there and 0.0 otherwise (scikit-learn gives 0.0 in both).
    """
    tp, fp, fn, tn = confusion(pred, gt, fov)
    tp_, fp_, fn_, tn_ = (float(x) for x in (tp, fp, fn, tn))
    den = (tp_ + fp_) * (tp_ + fn_) * (tn_ + fp_) * (tn_ + fn_)
    if den == 0:
        return 1.0 if fp + fn == 0 else 0.0
    return (tp_ * tn_ - fp_ * fn_) / math.sqrt(den)


def pr_auc(prob: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Average precision of the pixel scores inside the FOV (scikit-learn's definition).

    Scores are sorted in decreasing order; at each distinct score the precision P_n and
    recall R_n of "score ≥ that value" are taken, and AP = Σ (R_n − R_{n−1})·P_n with
    R_0 = 0. Tied scores enter together (one threshold).

    Returns:
        AP in [0, 1]; 1.0 when every FOV pixel is positive; ``nan`` with no positive.
    """
    check_shapes(prob, gt, fov)
    s = in_fov(np.asarray(prob, dtype=np.float64), fov)
    g = in_fov(gt.astype(bool), fov)
    n_pos = int(np.count_nonzero(g))
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, g = s[order], g[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie group
    tp = np.cumsum(g, dtype=np.float64)[last]
    prec = tp / (last + 1.0)
    recall = tp / n_pos
    return float(np.sum(np.diff(recall, prepend=0.0) * prec))
