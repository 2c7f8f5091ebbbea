"""The IoU-prediction term: L1 between the mask decoder's predicted IoU and the actual IoU."""

from __future__ import annotations

import torch

from samlora.losses.dice import _check


@torch.no_grad()
def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded prediction (logit > 0, i.e. p > 0.5) with the target, per image.

    Args:
        logits: ``B×1×H×W`` raw scores.
        target: ``B×1×H×W`` in {0, 1}.

    Returns:
        ``B`` IoU values in [0, 1] (no gradient); an image whose prediction and target are
        both empty has IoU 1.
    """
    _check(logits, target)
    pred = (logits > 0).flatten(1).float()
    t = (target > 0.5).flatten(1).float()
    inter = (pred * t).sum(1)
    union = pred.sum(1) + t.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def iou_l1_loss(pred_iou: torch.Tensor, logits: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between the decoder's predicted IoU and :func:`mask_iou`.

    Only the IoU head learns from this term: the actual IoU is a constant target.

    Args:
        pred_iou: ``B×1`` (or ``B``) predicted IoU of the mask decoder.
        logits: ``B×1×H×W`` mask logits the IoU was predicted for.
        target: ``B×1×H×W`` in {0, 1}.

    Returns:
        A scalar ≥ 0.
    """
    actual = mask_iou(logits, target)
    if pred_iou.numel() != actual.numel():
        raise ValueError(f"predicted IoU has {pred_iou.numel()} values for "
                         f"{actual.numel()} masks (shape {tuple(pred_iou.shape)})")
    return (pred_iou.float().reshape(-1) - actual).abs().mean()
