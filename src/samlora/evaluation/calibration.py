"""Calibration of a probability map inside the FOV: reliability bins and the ECE.

Bins are equal-width on [0, 1] (15 by default) and close on the right, as
``sklearn.calibration.calibration_curve(strategy='uniform')``: bin 0 is [0, 1/n], bin k is
(k/n, (k+1)/n]. Probabilities are clipped to [0, 1]. Per bin, "confidence" is the mean
predicted probability of its pixels and "accuracy" the fraction of them that are
ground-truth foreground. ECE = Σ_k (n_k/N)·|accuracy_k − confidence_k|.
"""

from __future__ import annotations

import numpy as np

from samlora.evaluation._fov import check_shapes, in_fov

ECE_BINS = 15


def reliability_curve(prob: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None,
                      n_bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per-bin reliability data of the pixels inside the FOV.

    Returns:
        ``{"edges": (n_bins+1,), "count": (n_bins,) int, "confidence": (n_bins,),
        "accuracy": (n_bins,)}``; confidence and accuracy are ``nan`` for an empty bin.
    """
    check_shapes(prob, gt, fov)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = np.clip(in_fov(np.asarray(prob, dtype=np.float64), fov), 0.0, 1.0)
    g = in_fov(gt.astype(bool), fov)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], p, side="left")
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_g = np.bincount(idx, weights=g.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(count > 0, sum_p / count, np.nan)
        acc = np.where(count > 0, sum_g / count, np.nan)
    return {"edges": edges, "count": count, "confidence": conf, "accuracy": acc}


def ece(prob: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None,
        n_bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins inside the FOV.

    Returns:
        ECE in [0, 1]; ``nan`` for an empty FOV.
    """
    curve = reliability_curve(prob, gt, fov, n_bins)
    n = int(curve["count"].sum())
    if n == 0:
        return float("nan")
    full = curve["count"] > 0
    gap = np.abs(curve["accuracy"][full] - curve["confidence"][full])
    return float(np.sum(curve["count"][full] * gap) / n)
