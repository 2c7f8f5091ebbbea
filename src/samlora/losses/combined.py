"""The weighted composite loss of a method (``methods.<name>.loss`` in params.yaml)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch

from samlora.losses.cldice import CLDICE_FORMS, seglab_cldice_loss, soft_cldice_loss
from samlora.losses.dice import DICE_OVER, bce_loss, soft_dice_loss
from samlora.losses.iou import iou_l1_loss
from samlora.losses.tversky import focal_tversky_loss

log = logging.getLogger(__name__)

#: Weights every loss config must give (TopoLoRA-SAM's terms).
TERMS = ("bce", "dice", "cldice")
#: Weights added for SAM2LoRA; absent means 0.
OPTIONAL_TERMS = ("focal_tversky", "iou_l1")
#: Term settings and their defaults (SAM2LoRA's FocalTversky: α 0.7, β 0.3, γ 0.75; clDice
#: and Dice smoothing in our form, not the TopoLoRA-SAM reference code's).
SETTINGS: dict[str, Any] = {"cldice_iters": 10, "cldice_form": "samlora", "dice_over": "image",
                            "dice_smooth": 1.0, "tversky_alpha": 0.7, "tversky_beta": 0.3,
                            "tversky_gamma": 0.75}

MaskTerm = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CompositeLoss:
    """``loss(logits, target, pred_iou=None) -> (total, terms)``, built by :func:`build_loss`.

    Attributes:
        weights: the non-zero weights by term name.
        needs_iou: True when the ``iou_l1`` term is weighted, so calls must pass the
            decoder's predicted IoU.
    """

    def __init__(self, weights: Mapping[str, float], mask_terms: Mapping[str, MaskTerm]) -> None:
        self.weights = dict(weights)
        self._mask_terms = dict(mask_terms)
        self.needs_iou = "iou_l1" in self.weights

    def __call__(self, logits: torch.Tensor, target: torch.Tensor,
                 pred_iou: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the active terms.

        Args:
            logits: ``B×1×H×W`` raw scores.
            target: ``B×1×H×W`` in {0, 1}.
            pred_iou: ``B×1`` IoU predicted by the mask decoder; required when
                :attr:`needs_iou`.

        Returns:
            The scalar total (with gradient) and ``{term: value}`` floats for each weighted
            term plus ``loss`` (the total).
        """
        values = {k: fn(logits, target) for k, fn in self._mask_terms.items()}
        if self.needs_iou:
            if pred_iou is None:
                raise ValueError("loss weight iou_l1 > 0 needs the decoder's predicted IoU: "
                                 "call the model's forward_with_iou and pass pred_iou")
            values["iou_l1"] = iou_l1_loss(pred_iou, logits, target)
        total = sum(self.weights[k] * v for k, v in values.items())
        terms = {k: float(v.detach()) for k, v in values.items()}
        terms["loss"] = float(total.detach())
        return total, terms


def build_loss(loss_cfg: Mapping) -> CompositeLoss:
    """Build the composite loss from weights.

    ``total = bce·BCE + dice·SoftDice + cldice·SoftClDice + focal_tversky·FocalTversky
    + iou_l1·|IoU_pred − IoU|``; a term with weight 0 is not computed (the clDice
    ablation's 0 costs nothing). ``bce``, ``dice`` and ``cldice`` must be given;
    ``focal_tversky`` and ``iou_l1`` default to 0, so older configs build the same loss.

    Args:
        loss_cfg: the weights above (non-negative, not all 0) and optional settings:
            ``cldice_iters`` (soft-skeleton iterations, default 10), ``dice_over``
            (``image``: per-image Dice averaged, the default; ``batch``: one Dice over the
            batch, SAM2LoRA's), ``dice_smooth`` (the soft Dice smoothing ``s`` in
            ``(2·Σpt + s)/(Σp + Σt + s)``, > 0; default 1.0, ours; the TopoLoRA-SAM reference
            code, Seglab, uses 1e-6), ``cldice_form`` (``samlora``, the default:
            :func:`~samlora.losses.cldice.soft_cldice_loss`, smoothing 1 in Tprec and Tsens;
            ``seglab``: :func:`~samlora.losses.cldice.seglab_cldice_loss`, Seglab's exact
            form, ε = 1e-6, one opening fewer for the same ``cldice_iters``, and a loss near 0
            for an empty target or a confidently empty prediction), ``tversky_alpha`` /
            ``tversky_beta`` / ``tversky_gamma`` (FN weight, FP weight, exponent; default
            0.7 / 0.3 / 0.75). Seglab's exact loss semantics are ``cldice_form: seglab`` with
            ``dice_smooth: 1e-6``.

    Returns:
        A :class:`CompositeLoss`.
    """
    missing = [k for k in TERMS if k not in loss_cfg]
    if missing:
        raise ValueError(f"loss config lacks weights {missing}")
    weights = {k: float(loss_cfg[k]) if k in loss_cfg else 0.0 for k in (*TERMS, *OPTIONAL_TERMS)}
    if any(w < 0 for w in weights.values()) or not any(weights.values()):
        raise ValueError(f"loss weights must be >= 0 and not all 0, got {weights}")
    opt = {k: loss_cfg[k] if k in loss_cfg else v for k, v in SETTINGS.items()}
    if opt["dice_over"] not in DICE_OVER:
        raise ValueError(f"loss dice_over must be one of {DICE_OVER}, got {opt['dice_over']!r}")
    if opt["cldice_form"] not in CLDICE_FORMS:
        raise ValueError(f"loss.cldice_form must be one of {CLDICE_FORMS}, "
                         f"got {opt['cldice_form']!r}")
    if not isinstance(opt["dice_smooth"], int | float) or isinstance(opt["dice_smooth"], bool) \
            or not opt["dice_smooth"] > 0:
        raise ValueError(f"loss.dice_smooth must be a number > 0, got {opt['dice_smooth']!r} "
                         "(YAML reads 1e-6 as a string: write 1.0e-6)")
    cldice = seglab_cldice_loss if opt["cldice_form"] == "seglab" else soft_cldice_loss
    fns: dict[str, MaskTerm] = {
        "bce": bce_loss,
        "dice": lambda x, t: soft_dice_loss(x, t, smooth=float(opt["dice_smooth"]),
                                            over=str(opt["dice_over"])),
        "cldice": lambda x, t: cldice(x, t, iters=int(opt["cldice_iters"])),
        "focal_tversky": lambda x, t: focal_tversky_loss(
            x, t, alpha=float(opt["tversky_alpha"]), beta=float(opt["tversky_beta"]),
            gamma=float(opt["tversky_gamma"])),
    }
    active = {k: w for k, w in weights.items() if w > 0}
    log.debug("loss weights %s, settings %s", active, opt)
    return CompositeLoss(active, {k: fns[k] for k in active if k in fns})
