"""Focal Tversky loss (SAM2LoRA's FocalTversky term), global over the batch."""

from __future__ import annotations

import torch

from samlora.losses.dice import _check


def focal_tversky_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.7,
                       beta: float = 0.3, gamma: float = 0.75,
                       smooth: float = 1.0) -> torch.Tensor:
    """Focal Tversky loss ``(1 − TI)^γ`` with one Tversky index for the whole batch.

    ``TI = (TP + s) / (TP + α·FN + β·FP + s)`` with soft counts summed over every pixel of
    the batch: ``TP = Σ p·t``, ``FN = Σ (1 − p)·t``, ``FP = Σ p·(1 − t)``. With α > β,
    missed foreground (thin vessels) costs more than false alarms. The exponent is ``γ``
    itself: SAM2LoRA's 0.75 is applied as ``(1 − TI)^0.75``, the same as Abraham and Khan's
    ``(1 − TI)^(1/γ')`` with ``γ' = 4/3``. With γ = 1 this is the plain Tversky loss.

    Args:
        logits: ``B×1×H×W`` raw scores; ``p = sigmoid(logits)``.
        target: ``B×1×H×W`` in {0, 1}.
        alpha: weight of false negatives (SAM2LoRA: 0.7).
        beta: weight of false positives (SAM2LoRA: 0.3 = 1 − α).
        gamma: the exponent (SAM2LoRA: 0.75).
        smooth: additive smoothing ``s`` in numerator and denominator.

    Returns:
        A scalar in [0, 1].
    """
    _check(logits, target)
    if alpha < 0 or beta < 0 or gamma <= 0:
        raise ValueError(f"focal Tversky needs alpha, beta >= 0 and gamma > 0, got "
                         f"alpha={alpha}, beta={beta}, gamma={gamma}")
    p = torch.sigmoid(logits.float()).flatten()
    t = target.float().flatten()
    tp = (p * t).sum()
    fn = ((1 - p) * t).sum()
    fp = (p * (1 - t)).sum()
    ti = (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)
    # clamp: (1 − TI) can round to a tiny negative, and x^0.75 of it would be nan
    return (1 - ti).clamp_min(0).pow(gamma)
