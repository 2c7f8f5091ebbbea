"""Per-image metrics with the exact semantics of each paper's reference code.

Used by the ``topolora_ref`` and ``sam2lora_ref`` evaluation modes
(:mod:`samlora.evaluation.modes`). Our own metrics (:mod:`samlora.evaluation.metrics`)
define edge cases for correctness; these reproduce what the reference code computes,
quirks included, so a paper's numbers can be compared with ours under its own rules.

TopoLoRA-SAM (``seglab/metrics``), threshold ``p > 0.5``, ε = 1e-6:

- Dice 2TP/(2TP+FP+FN+ε), IoU TP/(TP+FP+FN+ε), precision TP/(TP+FP+ε), recall
  TP/(TP+FN+ε); so both-empty scores 0.0. The paper reports these **pooled** over every
  test pixel (the per-image values are its per-image CSV); the pooling is
  :mod:`samlora.evaluation.pooled`'s.
- BFScore: boundary = mask XOR its erosion by the 3×3 cross (scipy, background beyond the
  border), tolerance = one dilation by the cross; P = |B_p ∧ dil(B_g)|/(|B_p|+ε),
  R = |B_g ∧ dil(B_p)|/(|B_g|+ε), BF = 2PR/(P+R+ε).
- clDice from ``skimage.morphology.skeletonize``: Tprec = |S(P)∧G|/(|S(P)|+ε), Tsens
  likewise, clDice = 2·Tprec·Tsens/(Tprec+Tsens+ε).
- ECE: 15 equal-width bins (k/15, (k+1)/15] (a probability of exactly 0 falls in no bin but
  counts in N), over pixels sampled with replacement, 5,000 per image in test order until
  200,000 (:func:`ece_sample_sizes`); the pooled sums are what the summary uses.

SAM2LoRA (``utils/eval_metrics.py``), threshold ``p > 0.5``, whole image:

- IoU, Dice: 0.0 when the union (or the sum) is empty; F1 as scikit-learn's ``f1_score``
  (0.0 without positives); accuracy over all pixels; sensitivity, specificity, precision:
  0.0 on a zero denominator; MCC as scikit-learn's ``matthews_corrcoef`` (0.0 on a zero
  denominator); AUC as ``roc_auc_score`` (which raises on one class: ``nan`` here).
- HD95 as ``medpy.metric.binary.hd95``: the 95th percentile of both directed contour
  distance sets pooled (not the larger of the two percentiles); when either mask is empty
  (medpy raises) the image diagonal √(H²+W²).
- Boundary IoU: boundary = mask minus ``skimage.morphology.binary_erosion`` (cross; the
  image border does not erode), IoU of the boundaries, 0.0 when both are empty. Unlike
  Cheng et al.'s boundary IoU (ours) the band is 1 px wide whatever the image size.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from samlora.evaluation.boundary import surface_distances
from samlora.evaluation.metrics import auc as _auc

EPS = 1e-6
_CROSS = ndimage.generate_binary_structure(2, 1)
#: TopoLoRA-SAM's ECE: bins, pixels sampled per image, cap over the test set.
ECE_BINS = 15
ECE_PER_IMAGE = 5000
ECE_MAX_PIXELS = 200_000


def counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    """(TP, FP, FN, TN) of bool masks over the whole image."""
    p, g = pred.astype(bool), gt.astype(bool)
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(g)) - tp
    return tp, fp, fn, p.size - tp - fp - fn


def seglab_overlap(tp: float, fp: float, fn: float) -> dict[str, float]:
    """TopoLoRA-SAM's Dice, IoU, precision and recall (``sensitivity``) from counts."""
    return {"dice": 2 * tp / (2 * tp + fp + fn + EPS), "iou": tp / (tp + fp + fn + EPS),
            "precision": tp / (tp + fp + EPS), "sensitivity": tp / (tp + fn + EPS)}


def seglab_bfscore(pred: np.ndarray, gt: np.ndarray, tol: int = 1) -> float:
    """TopoLoRA-SAM's boundary F-score (see the module docstring)."""
    p, g = pred.astype(bool), gt.astype(bool)
    bp = p ^ ndimage.binary_erosion(p, _CROSS)
    bg = g ^ ndimage.binary_erosion(g, _CROSS)
    dp = ndimage.binary_dilation(bp, _CROSS, iterations=tol) if tol > 0 else bp
    dg = ndimage.binary_dilation(bg, _CROSS, iterations=tol) if tol > 0 else bg
    prec = np.count_nonzero(bp & dg) / (np.count_nonzero(bp) + EPS)
    rec = np.count_nonzero(bg & dp) / (np.count_nonzero(bg) + EPS)
    return float(2 * prec * rec / (prec + rec + EPS))


def seglab_cldice(pred: np.ndarray, gt: np.ndarray) -> float:
    """TopoLoRA-SAM's clDice score from hard skeletons (see the module docstring)."""
    p, g = pred.astype(bool), gt.astype(bool)
    sp, sg = skeletonize(p), skeletonize(g)
    tprec = np.count_nonzero(sp & g) / (np.count_nonzero(sp) + EPS)
    tsens = np.count_nonzero(sg & p) / (np.count_nonzero(sg) + EPS)
    return float(2 * tprec * tsens / (tprec + tsens + EPS))


def ece_sample_sizes(n_images: int, per_image: int = ECE_PER_IMAGE,
                     cap: int = ECE_MAX_PIXELS) -> list[int]:
    """Pixels TopoLoRA-SAM samples from each of ``n_images`` test images, in order."""
    sizes, left = [], cap
    for _ in range(n_images):
        k = max(0, min(per_image, left))
        sizes.append(k)
        left -= k
    return sizes


def ece_components(prob: np.ndarray, gt: np.ndarray, k: int,
                   rng: np.random.Generator, n_bins: int = ECE_BINS) -> np.ndarray:
    """Additive calibration sums of ``k`` pixels drawn with replacement.

    Returns:
        ``[N, n_0..n_{B-1}, Σp_0.., Σg_0..]``: samples drawn, and per bin (k/B, (k+1)/B]
        its pixel count, sum of probabilities and sum of labels. Summed over images they
        give the pooled ECE (:func:`ece_from_components`).
    """
    out = np.zeros(1 + 3 * n_bins)
    if k <= 0:
        return out
    flat_p, flat_g = np.asarray(prob, np.float64).ravel(), gt.astype(np.float64).ravel()
    idx = rng.integers(0, flat_p.size, size=k, endpoint=False)
    p, g = flat_p[idx], flat_g[idx]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    binned = p > 0.0  # (0, 1/B] is the first bin; p = 0 falls in none
    b = np.clip(np.searchsorted(edges, p[binned], side="left") - 1, 0, n_bins - 1)
    out[0] = k
    out[1:1 + n_bins] = np.bincount(b, minlength=n_bins)
    out[1 + n_bins:1 + 2 * n_bins] = np.bincount(b, weights=p[binned], minlength=n_bins)
    out[1 + 2 * n_bins:] = np.bincount(b, weights=g[binned], minlength=n_bins)
    return out


def ece_from_components(c: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE = Σ_k (n_k/N)·|mean label_k − mean p_k| = Σ_k |Σg_k − Σp_k| / N; nan if N = 0."""
    n = c[0]
    if n <= 0:
        return float("nan")
    sp, sg = c[1 + n_bins:1 + 2 * n_bins], c[1 + 2 * n_bins:1 + 3 * n_bins]
    return float(np.abs(sg - sp).sum() / n)


def _ratio0(num: float, den: float) -> float:
    return num / den if den else 0.0


def sam2lora_metrics(prob: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """SAM2LoRA's per-image metric list on the whole image (see the module docstring)."""
    pred, g = np.asarray(prob) > 0.5, gt.astype(bool)
    tp, fp, fn, tn = counts(pred, g)
    mcc_den = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    f1 = _ratio0(2 * tp, 2 * tp + fp + fn)
    return {
        "iou": _ratio0(tp, tp + fp + fn),
        "auc": _auc(prob, g),
        "dice": f1,
        "hd95": medpy_hd95(pred, g),
        "f1": f1,
        "accuracy": (tp + tn) / pred.size,
        "sensitivity": _ratio0(tp, tp + fn),
        "specificity": _ratio0(tn, tn + fp),
        "precision": _ratio0(tp, tp + fp),
        "mcc": _ratio0(float(tp) * tn - float(fp) * fn, mcc_den),
        "boundary_iou": sam2lora_boundary_iou(pred, g),
    }


def medpy_hd95(pred: np.ndarray, gt: np.ndarray) -> float:
    """medpy's ``hd95``: 95th percentile of both directed distance sets together; the image
    diagonal when either mask is empty (SAM2LoRA's fallback for medpy's error)."""
    d = surface_distances(pred, gt)
    if d is None:
        return float(math.hypot(*pred.shape))
    return float(np.percentile(np.concatenate(d), 95))


def sam2lora_boundary_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """SAM2LoRA's boundary IoU: mask minus its skimage erosion, IoU of those boundaries.

    ``skimage.morphology.binary_erosion`` (deprecated in scikit-image 0.26) is scipy's
    erosion by the cross with foreground beyond the border; that is computed here.
    """
    bp = pred & ~ndimage.binary_erosion(pred, _CROSS, border_value=1)
    bg = gt & ~ndimage.binary_erosion(gt, _CROSS, border_value=1)
    return _ratio0(np.count_nonzero(bp & bg), np.count_nonzero(bp | bg))
