"""Per-image segmentation metrics computed inside the FOV, selectable by name.

Dice, IoU, ROC AUC and clDice live here; the confusion-matrix metrics and average
precision in :mod:`samlora.evaluation.overlap`, the distance and boundary metrics in
:mod:`samlora.evaluation.boundary`, the Betti-number errors in
:mod:`samlora.evaluation.topology` and the ECE in :mod:`samlora.evaluation.calibration`
(each module documents its edge cases). :func:`compute_metrics` computes any of
:data:`ALL_METRICS` by name; names ending ``_mm`` are the pixel distances times
``pixel_mm`` and ``nan`` when no pixel size is given.

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

from samlora.evaluation import boundary, calibration, overlap, topology
from samlora.evaluation._fov import check_shapes as _check
from samlora.evaluation._fov import in_fov as _in_fov

log = logging.getLogger(__name__)

#: Metrics computed on the thresholded mask (the rest take the probability map).
BINARY_METRICS = ("dice", "iou", "cldice", "precision", "sensitivity", "specificity",
                  "accuracy", "mcc", "hd95", "assd", "hd95_mm", "assd_mm", "boundary_iou",
                  "bfscore", "betti0_error", "betti1_error")
#: Metrics computed on the probability map.
SCORE_METRICS = ("auc", "pr_auc", "ece")
#: The default selection (``evaluate.metrics`` may list any of :data:`ALL_METRICS`).
METRIC_NAMES = ("dice", "iou", "auc", "cldice")
#: Distances in pixels, and their millimetre variants (``pixel_mm`` times the pixels).
DISTANCE_METRICS = {"hd95": boundary.hd95_from, "assd": boundary.assd_from}
MM_METRICS = {"hd95_mm": "hd95", "assd_mm": "assd"}


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
    "precision": overlap.precision,
    "sensitivity": overlap.sensitivity,
    "specificity": overlap.specificity,
    "accuracy": overlap.accuracy,
    "mcc": overlap.mcc,
    "pr_auc": overlap.pr_auc,
    "hd95": boundary.hd95,
    "assd": boundary.assd,
    "boundary_iou": boundary.boundary_iou,
    "bfscore": boundary.bfscore,
    "betti0_error": topology.betti0_error,
    "betti1_error": topology.betti1_error,
    "ece": calibration.ece,
}
#: Every selectable metric name.
ALL_METRICS = tuple(_METRICS) + tuple(MM_METRICS)


def check_metric_names(names: Sequence[str]) -> list[str]:
    """Return ``names`` as a list, raising ValueError on an unknown metric name."""
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {list(ALL_METRICS)}")
    return list(names)


def compute_metrics(
    prob: np.ndarray,
    gt: np.ndarray,
    fov: np.ndarray | None,
    threshold: float = 0.5,
    names: Sequence[str] = METRIC_NAMES,
    pixel_mm: float | None = None,
) -> dict[str, float]:
    """Compute the named metrics of one image inside its FOV.

    The contour distances are computed once per call however many of ``hd95``, ``assd``,
    their ``_mm`` variants and ``bfscore`` (default tolerance 1 px) are asked for.

    Args:
        prob: H×W float probability map in [0, 1].
        gt: H×W bool ground-truth mask.
        fov: H×W bool field of view, or None for the whole image.
        threshold: a pixel is predicted foreground when ``prob >= threshold``.
        names: metric names, from :data:`ALL_METRICS`.
        pixel_mm: isotropic pixel size in millimetres for the ``_mm`` metrics (``nan``
            when None).

    Returns:
        ``{name: value}`` in the order of ``names``.
    """
    names = check_metric_names(names)
    gt = gt.astype(bool)
    fov = None if fov is None else fov.astype(bool)
    pred = np.asarray(prob) >= threshold
    cache: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    def surface() -> tuple[np.ndarray, np.ndarray] | None:
        if "d" not in cache:
            cache["d"] = boundary.surface_distances(pred, gt, fov)
        return cache["d"]

    def distance(px_name: str) -> float:
        d = surface()
        return boundary.empty_distance(pred, gt, fov) if d is None else DISTANCE_METRICS[px_name](d)

    out: dict[str, float] = {}
    for name in names:
        if name in DISTANCE_METRICS:
            out[name] = distance(name)
        elif name == "bfscore" and surface() is not None:
            out[name] = boundary.bfscore_from(surface())
        elif name in MM_METRICS:
            out[name] = float("nan") if pixel_mm is None else distance(MM_METRICS[name]) * pixel_mm
        else:
            x = prob if name in SCORE_METRICS else pred
            out[name] = float(_METRICS[name](x, gt, fov))
    return out
