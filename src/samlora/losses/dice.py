"""Pixel-wise losses on logits: binary cross-entropy and soft Dice."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.shape != target.shape or logits.ndim != 4:
        raise ValueError(f"expected logits and target of the same B×1×H×W shape, got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy, averaged over all pixels (numerically stable, on logits).

    Args:
        logits: ``B×1×H×W`` raw scores.
        target: ``B×1×H×W`` in {0, 1} (soft targets in [0, 1] work too).

    Returns:
        A scalar.
    """
    _check(logits, target)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


DICE_OVER = ("image", "batch")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                   over: str = "image") -> torch.Tensor:
    """Soft Dice loss ``1 − (2·Σpt + s) / (Σp + Σt + s)``.

    ``over="image"`` sums over each image's pixels and averages the B losses (TopoLoRA-SAM);
    ``over="batch"`` sums over every pixel of the batch at once, one Dice for the whole batch
    (SAM2LoRA's SoftDice, smooth 1). They agree for B = 1.

    Args:
        logits: ``B×1×H×W`` raw scores; ``p = sigmoid(logits)``.
        target: ``B×1×H×W`` in {0, 1}.
        smooth: the additive smoothing ``s`` (an empty target and prediction give 0).
        over: ``image`` or ``batch`` (see above).

    Returns:
        A scalar in [0, 1].
    """
    _check(logits, target)
    if over not in DICE_OVER:
        raise ValueError(f"soft Dice 'over' must be one of {DICE_OVER}, got {over!r}")
    start = 1 if over == "image" else 0
    p = torch.sigmoid(logits.float()).flatten(start)
    t = target.float().flatten(start)
    inter = (p * t).sum(-1)
    dice = (2 * inter + smooth) / (p.sum(-1) + t.sum(-1) + smooth)
    return (1 - dice).mean()
