"""Soft (grey-level) morphology on B×1×H×W maps: 3×3 erosion, dilation and opening.

Erosion is the elementwise minimum of min-pools with 3×1 and 1×3 kernels, i.e. the minimum
over the plus-shaped neighbourhood; dilation is a 3×3 max-pool (min-pool = −maxpool(−x),
outside the image counts as +inf for a minimum and −inf for a maximum, as max_pool2d's
padding does). The values and gradients equal those of ``F.max_pool2d`` (the gradient goes
to the first extreme element, as a pool's does), but the pools are taken over shifted views:
on the CPU, stride-1 ``max_pool2d`` is about ten times slower, and it keeps an int64 index
per element for backward where this keeps one element of the input's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx, once_differentiable

Offsets = Sequence[tuple[int, int]]

PLUS: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
COLUMN: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0))  # 3×1: rows above and below
ROW: tuple[tuple[int, int], ...] = ((0, 0), (0, -1), (0, 1))  # 1×3: columns left and right


def _views(x: torch.Tensor, offsets: Offsets, fill: float) -> list[torch.Tensor]:
    """``x`` shifted by each (dy, dx) in {−1, 0, 1}², with ``fill`` outside the image."""
    h, w = x.shape[-2:]
    xp = F.pad(x, (1, 1, 1, 1), value=fill)
    return [xp[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in offsets]


class _NeighbourExtreme(torch.autograd.Function):
    """Min or max over shifted copies; backward routes the gradient to the first arg-extreme."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, offsets: Offsets, largest: bool,
                need_grad: bool) -> torch.Tensor:
        views = _views(x, offsets, float("-inf") if largest else float("inf"))
        pick = torch.maximum if largest else torch.minimum
        out = pick(views[0], views[1])
        for v in views[2:]:
            out = pick(out, v)
        if need_grad:
            # arg = index of the first view equal to out, kept as floats: comparisons that
            # yield bool tensors are several times slower than arithmetic on the CPU.
            arg, free = torch.zeros_like(out), torch.ones_like(out)
            for k, v in enumerate(views[:-1]):
                hit = (v - out).abs_().sign_().neg_().add_(1).mul_(free)  # 1 where v == out
                free.sub_(hit)
                arg.add_(hit, alpha=k)
            arg.add_(free, alpha=len(offsets) - 1)
            ctx.save_for_backward(arg)
        ctx.offsets = offsets  # type: ignore[attr-defined]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (arg,) = ctx.saved_tensors  # type: ignore[attr-defined]
        h, w = grad.shape[-2:]
        gp = grad.new_zeros(*grad.shape[:-2], h + 2, w + 2)
        for k, (dy, dx) in enumerate(ctx.offsets):  # type: ignore[attr-defined]
            sel = (arg - k).abs_().neg_().add_(1).clamp_(min=0)  # 1 where arg == k
            gp[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w].addcmul_(grad, sel)
        return gp[..., 1:-1, 1:-1], None, None, None


def neighbour_extreme(x: torch.Tensor, offsets: Offsets, largest: bool) -> torch.Tensor:
    """Elementwise max (``largest``) or min of ``x`` over its neighbours at ``offsets``.

    Args:
        x: ``B×C×H×W``.
        offsets: (dy, dx) pairs in {−1, 0, 1}², at least two; ties go to the first listed.
        largest: max if True, else min.

    Returns:
        ``B×C×H×W``.
    """
    if len(offsets) < 2:
        raise ValueError("need at least two offsets")
    need_grad = torch.is_grad_enabled() and x.requires_grad
    return _NeighbourExtreme.apply(x, tuple(offsets), largest, need_grad)


def soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Soft erosion: min(min-pool 3×1, min-pool 1×3), the plus-shaped 3×3 minimum.

    Args:
        x: ``B×1×H×W`` in [0, 1].

    Returns:
        ``B×1×H×W``.
    """
    return neighbour_extreme(x, PLUS, largest=False)


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Soft dilation: a 3×3 max-pool (separable: 3×1 then 1×3). Shapes as ``x`` (B×1×H×W)."""
    return neighbour_extreme(neighbour_extreme(x, COLUMN, largest=True), ROW, largest=True)


def soft_open(x: torch.Tensor) -> torch.Tensor:
    """Soft opening ``dilate(erode(x))``. Shapes as ``x`` (B×1×H×W)."""
    return soft_dilate(soft_erode(x))
