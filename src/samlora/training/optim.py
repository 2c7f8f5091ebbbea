"""AdamW with a linear-warmup cosine schedule over optimiser steps."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def build_optimizer(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def cosine_factor(step: int, total_steps: int, warmup_steps: int, floor: float) -> float:
    """Multiplier of the base lr at ``step``: linear warmup, then cosine decay to ``floor``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    lr: float = 1e-4,
    min_lr: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine schedule from ``lr`` to ``min_lr`` over ``total_steps`` optimiser steps."""
    floor = min_lr / lr if lr > 0 else 0.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_factor(step, total_steps, warmup_steps, floor)
    )
