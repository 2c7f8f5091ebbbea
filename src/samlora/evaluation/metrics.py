"""Per-image segmentation metrics (Dice, IoU, ROC AUC, clDice) computed inside the FOV.

All functions take H×W arrays: ``pred``/``gt``/``fov`` are boolean masks, ``prob`` is a
float probability map. Pixels where ``fov`` is False are ignored entirely (``fov=None``
means the whole image). Edge cases are defined, never raised:

- Dice, IoU and clDice are 1.0 when prediction and ground truth are both empty inside the
  FOV (a correct "nothing here"), and 0.0 when exactly one of them is empty.
- ROC AUC is ``nan`` when the FOV holds only one class of ground-truth pixels (the ranking
  is undefined); means over images skip such images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata
from skimage.morphology import skeletonize

log = logging.getLogger(__name__)

#: Metrics computed on the thresholded mask (the rest take the probability map).
BINARY_METRICS = ("dice", "iou", "cldice")
#: Metrics computed on the probability map.
SCORE_METRICS = ("auc",)
METRIC_NAMES = ("dice", "iou", "auc", "cldice")


def _check(a: np.ndarray, b: np.ndarray, fov: np.ndarray | None) -> None:
    if a.ndim != 2 or a.shape != b.shape or (fov is not None and fov.shape != a.shape):
        shapes = [a.shape, b.shape] + ([fov.shape] if fov is not None else [])
        raise ValueError(f"expected H×W arrays of one shape, got {shapes}")


def _in_fov(a: np.ndarray, fov: np.ndarray | None) -> np.ndarray:
    """The values of ``a`` inside ``fov`` as a flat array (all of ``a`` when fov is None)."""
    return a.ravel() if fov is None else a[fov.astype(bool)]


def dice(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Dice coefficient 2|P∩G| / (|P|+|G|) inside the FOV.

    Args:
        pred: H×W bool predicted mask.
        gt: H×W bool ground-truth mask.
        fov: H×W bool field of view, or None for the whole image.

    Returns:
        Dice in [0, 1]; 1.0 when both masks are empty inside the FOV.
    """
    _check(pred, gt, fov)
    p, g = _in_fov(pred.astype(bool), fov), _in_fov(gt.astype(bool), fov)
    total = int(p.sum()) + int(g.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(p & g)) / total


def iou(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Intersection over union |P∩G| / |P∪G| (Jaccard index) inside the FOV.

    Args:
        pred: H×W bool predicted mask.
        gt: H×W bool ground-truth mask.
        fov: H×W bool field of view, or None for the whole image.

    Returns:
        IoU in [0, 1]; 1.0 when both masks are empty inside the FOV.
    """
    _check(pred, gt, fov)
    p, g = _in_fov(pred.astype(bool), fov), _in_fov(gt.astype(bool), fov)
    union = int(np.count_nonzero(p | g))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & g)) / union


def auc(prob: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Area under the ROC curve of the pixel scores inside the FOV.

    Computed as the Mann–Whitney U statistic: with average ranks r of all scores (ties
    share their mean rank), AUC = (Σ r_pos − n_pos(n_pos+1)/2) / (n_pos·n_neg). A tie
    between a positive and a negative pixel counts one half, as in the trapezoidal ROC.

    Args:
        prob: H×W float scores (higher = more likely vessel).
        gt: H×W bool ground-truth mask.
        fov: H×W bool field of view, or None for the whole image.

    Returns:
        AUC in [0, 1]; ``nan`` when the FOV holds only positives or only negatives.
    """
    _check(prob, gt, fov)
    s = _in_fov(np.asarray(prob, dtype=np.float64), fov)
    g = _in_fov(gt.astype(bool), fov)
    n_pos = int(g.sum())
    n_neg = g.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s, method="average")
    u = float(ranks[g].sum(dtype=np.float64)) - n_pos * (n_pos + 1) / 2.0
    return u / (float(n_pos) * float(n_neg))


def cldice(pred: np.ndarray, gt: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Centerline Dice (Shit et al., CVPR 2021) of binary masks inside the FOV.

    With P = pred∧FOV, G = gt∧FOV and S(·) the skeleton from
    :func:`skimage.morphology.skeletonize`: Tprec = |S(P)∩G| / |S(P)|,
    Tsens = |S(G)∩P| / |S(G)|, clDice = 2·Tprec·Tsens / (Tprec + Tsens).

    Args:
        pred: H×W bool predicted mask.
        gt: H×W bool ground-truth mask.
        fov: H×W bool field of view, or None for the whole image.

    Returns:
        clDice in [0, 1]; 1.0 when both masks are empty inside the FOV, 0.0 when exactly
        one is empty or when Tprec + Tsens = 0.
    """
    _check(pred, gt, fov)
    p, g = pred.astype(bool), gt.astype(bool)
    if fov is not None:
        p, g = p & fov.astype(bool), g & fov.astype(bool)
    if not p.any() and not g.any():
        return 1.0
    if not p.any() or not g.any():
        return 0.0
    sp, sg = skeletonize(p), skeletonize(g)
    n_sp, n_sg = int(sp.sum()), int(sg.sum())
    if n_sp == 0 or n_sg == 0:  # cannot happen for non-empty masks; guard anyway
        return 0.0
    tprec = np.count_nonzero(sp & g) / n_sp
    tsens = np.count_nonzero(sg & p) / n_sg
    if tprec + tsens == 0:
        return 0.0
    return 2.0 * tprec * tsens / (tprec + tsens)


_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]] = {
    "dice": dice,
    "iou": iou,
    "auc": auc,
    "cldice": cldice,
}


def check_metric_names(names: Sequence[str]) -> list[str]:
    """Return ``names`` as a list, raising ValueError on an unknown metric name."""
    unknown = [n for n in names if n not in _METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {list(_METRICS)}")
    return list(names)


def compute_metrics(
    prob: np.ndarray,
    gt: np.ndarray,
    fov: np.ndarray | None,
    threshold: float = 0.5,
    names: Sequence[str] = METRIC_NAMES,
) -> dict[str, float]:
    """Compute the named metrics of one image inside its FOV.

    Args:
        prob: H×W float probability map in [0, 1].
        gt: H×W bool ground-truth mask.
        fov: H×W bool field of view, or None for the whole image.
        threshold: a pixel is predicted foreground when ``prob >= threshold``.
        names: metric names, from ``dice``, ``iou``, ``auc``, ``cldice``.

    Returns:
        ``{name: value}`` in the order of ``names``.
    """
    names = check_metric_names(names)
    gt = gt.astype(bool)
    fov = None if fov is None else fov.astype(bool)
    pred = np.asarray(prob) >= threshold
    out: dict[str, float] = {}
    for name in names:
        x = prob if name in SCORE_METRICS else pred
        out[name] = float(_METRICS[name](x, gt, fov))
    return out
