"""The weighted composite loss of a method (``methods.<name>.loss`` in params.yaml)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import torch

from samlora.losses.cldice import soft_cldice_loss
from samlora.losses.dice import bce_loss, soft_dice_loss

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
TERMS = ("bce", "dice", "cldice")


def build_loss(loss_cfg: Mapping) -> LossFn:
    """Build ``loss(logits, target) -> (total, terms)`` from weights.

    ``total = bce·BCE + dice·SoftDice + cldice·SoftClDice``; a term with weight 0 is not
    computed (the clDice ablation's 0 costs nothing).

    Args:
        loss_cfg: ``bce``, ``dice``, ``cldice`` (non-negative weights) and ``cldice_iters``
            (soft-skeleton iterations, default 10).

    Returns:
        A function of ``B×1×H×W`` logits and ``B×1×H×W`` targets in {0, 1} returning the
        scalar total (with gradient) and ``{term: value}`` floats for each weighted term
        plus ``loss`` (the total).
    """
    missing = [k for k in TERMS if k not in loss_cfg]
    if missing:
        raise ValueError(f"loss config lacks weights {missing}")
    weights = {k: float(loss_cfg[k]) for k in TERMS}
    if any(w < 0 for w in weights.values()) or not any(weights.values()):
        raise ValueError(f"loss weights must be >= 0 and not all 0, got {weights}")
    iters = int(loss_cfg["cldice_iters"]) if "cldice_iters" in loss_cfg else 10
    fns: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "bce": bce_loss,
        "dice": soft_dice_loss,
        "cldice": lambda logits, target: soft_cldice_loss(logits, target, iters=iters),
    }
    active = {k: w for k, w in weights.items() if w > 0}
    log.debug("loss weights %s, clDice iterations %d", active, iters)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        values = {k: fns[k](logits, target) for k in active}
        total = sum(active[k] * v for k, v in values.items())
        terms = {k: float(v.detach()) for k, v in values.items()}
        terms["loss"] = float(total.detach())
        return total, terms

    return loss
