"""Soft skeletons and the soft clDice loss (Shit et al., "clDice", CVPR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from samlora.losses.morphology import soft_dilate, soft_erode


def soft_skeleton(prob: torch.Tensor, iters: int = 10) -> torch.Tensor:
    """Differentiable skeleton by iterated soft erosion (the paper's Algorithm 1).

    ``skel = relu(x − open(x))``; then ``iters`` times: ``x = erode(x)``,
    ``δ = relu(x − open(x))``, ``skel += relu(δ − skel·δ)``, with ``open = dilate∘erode``
    (see :mod:`samlora.losses.morphology`). Each erosion serves both as the next ``x`` and
    inside the previous opening, so it is computed once. Structures up to about
    ``2·iters + 1`` px wide are reduced to their centre lines.

    Args:
        prob: ``B×1×H×W`` probabilities (or a binary mask) in [0, 1].
        iters: erosion iterations (≥ 0).

    Returns:
        ``B×1×H×W`` soft skeleton in [0, 1].
    """
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    x = prob
    eroded = soft_erode(x)
    skel = F.relu(x - soft_dilate(eroded))
    for _ in range(iters):
        x = eroded
        eroded = soft_erode(x)
        delta = F.relu(x - soft_dilate(eroded))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def soft_cldice_loss(logits: torch.Tensor, target: torch.Tensor, iters: int = 10,
                     smooth: float = 1.0) -> torch.Tensor:
    """Soft clDice loss ``1 − 2·Tprec·Tsens / (Tprec + Tsens)`` per image, then the batch mean.

    ``Tprec = (Σ S(p)·t + s) / (Σ S(p) + s)`` (predicted skeleton inside the target) and
    ``Tsens = (Σ S(t)·p + s) / (Σ S(t) + s)`` (target skeleton inside the prediction),
    with ``S`` the :func:`soft_skeleton`. The target is a constant (no gradient).

    Args:
        logits: ``B×1×H×W`` raw scores; ``p = sigmoid(logits)``.
        target: ``B×1×H×W`` in {0, 1}.
        iters: soft-skeleton iterations.
        smooth: additive smoothing ``s``.

    Returns:
        A scalar in [0, 1].
    """
    if logits.shape != target.shape or logits.ndim != 4:
        raise ValueError(f"expected logits and target of the same B×1×H×W shape, got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    p = torch.sigmoid(logits.float())
    t = target.float().detach()
    skel_p = soft_skeleton(p, iters).flatten(1)
    with torch.no_grad():
        skel_t = soft_skeleton(t, iters).flatten(1)
    p, t = p.flatten(1), t.flatten(1)
    tprec = ((skel_p * t).sum(1) + smooth) / (skel_p.sum(1) + smooth)
    tsens = ((skel_t * p).sum(1) + smooth) / (skel_t.sum(1) + smooth)
    cl = 2 * tprec * tsens / (tprec + tsens)
    return (1 - cl).mean()
