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


#: The forms of the clDice term ``loss.cldice_form`` selects (see :func:`seglab_cldice_loss`).
CLDICE_FORMS = ("samlora", "seglab")


def seglab_soft_skeleton(prob: torch.Tensor, iters: int = 10) -> torch.Tensor:
    """The soft skeleton of the TopoLoRA-SAM reference code (Seglab's ``soft_skeletonize``).

    ``skel = 0``; then ``iters`` times: ``δ = relu(x − dilate(erode(x)))``,
    ``skel += relu(δ − skel·δ)``, ``x = erode(x)``, with the morphology of
    :mod:`samlora.losses.morphology` (erosion: plus-shaped 3×3 minimum; dilation: 3×3
    maximum; the same values as Seglab's max-pools). It takes ``iters`` openings where
    :func:`soft_skeleton` takes ``iters + 1``: ``seglab_soft_skeleton(x, n)`` equals
    ``soft_skeleton(x, n − 1)`` for ``n ≥ 1``, so with the same ``iters`` it removes
    structures one erosion thinner (up to about ``2·iters − 1`` px wide).

    Edge cases: ``iters = 0`` gives zeros (no opening is taken); a constant image (e.g. an
    all-background prediction) gives exactly zeros, as its opening equals itself.

    Args:
        prob: ``B×1×H×W`` probabilities (or a binary mask) in [0, 1].
        iters: openings taken (≥ 0).

    Returns:
        ``B×1×H×W`` soft skeleton in [0, 1].
    """
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    x = prob
    skel = torch.zeros_like(prob)
    for _ in range(iters):
        eroded = soft_erode(x)  # serves the opening and the next x, as in Seglab
        delta = F.relu(x - soft_dilate(eroded))
        skel = skel + F.relu(delta - skel * delta)
        x = eroded
    return skel


def seglab_cldice_loss(logits: torch.Tensor, target: torch.Tensor, iters: int = 10,
                       eps: float = 1e-6) -> torch.Tensor:
    """Soft clDice loss in the exact form of the TopoLoRA-SAM reference (Seglab's ``cldice_loss``).

    With ``p = sigmoid(logits)``, ``S`` the :func:`seglab_soft_skeleton` and sums over each
    image's C×H×W pixels::

        Tprec = Σ S(p)·t / (Σ S(p) + ε)        Tsens = Σ S(t)·p / (Σ S(t) + ε)
        clDice = (2·Tprec·Tsens + ε) / (Tprec + Tsens + ε)
        loss = 1 − mean over the batch of clDice

    It differs from :func:`soft_cldice_loss` in three ways: ε = 1e-6 stands only in the
    denominators of Tprec and Tsens (ours adds ``smooth`` = 1 to numerator and denominator),
    ε is also added to clDice's numerator and denominator, and the skeleton takes one
    opening fewer for the same ``iters``. The target is a constant (no gradient), as the
    reference's target is.

    Edge cases, all from the formula: an empty target gives ``S(t) = 0`` and ``Σ S(p)·t = 0``,
    so Tprec = Tsens = 0, clDice = ε/ε = 1 and the loss is 0 whatever the prediction (false
    positives on an empty image cost nothing). A confident all-background prediction
    (constant ``p``) has ``S(p) = 0`` exactly, so Tprec = 0, Tsens ≈ p and the loss is
    ``1 − ε/(Tsens + ε) ≈ p/(p + ε)``: it falls to 0 as the logits fall, i.e. the form rewards
    empty output. For logits −20 (``p`` = 2.06e-9) on DRIVE case 21's vessels it is
    0.00206 (the same for its top-left 256×256 crop), where :func:`soft_cldice_loss` gives
    0.9998 (0.9989 for the crop); for logits −10 it is 0.978, for −30 about 1e-7. A perfect
    binary prediction gives ≈ 0.

    Args:
        logits: ``B×1×H×W`` raw scores; ``p = sigmoid(logits)``.
        target: ``B×1×H×W`` in {0, 1}.
        iters: soft-skeleton openings (Seglab's ``iters``).
        eps: the ε above (Seglab's 1e-6).

    Returns:
        A scalar in [0, 1].
    """
    if logits.shape != target.shape or logits.ndim != 4:
        raise ValueError(f"expected logits and target of the same B×1×H×W shape, got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    p = torch.sigmoid(logits.float())
    t = target.float().detach()
    skel_p = seglab_soft_skeleton(p, iters).flatten(1)
    with torch.no_grad():
        skel_t = seglab_soft_skeleton(t, iters).flatten(1)
    p, t = p.flatten(1), t.flatten(1)
    tprec = (skel_p * t).sum(1) / (skel_p.sum(1) + eps)
    tsens = (skel_t * p).sum(1) / (skel_t.sum(1) + eps)
    cl = (2 * tprec * tsens + eps) / (tprec + tsens + eps)
    return 1 - cl.mean()
