"""Segmentation losses on logits: BCE, soft Dice, soft clDice, focal Tversky, the IoU-prediction
L1 term and their weighted sum."""

from samlora.losses.cldice import soft_cldice_loss, soft_skeleton
from samlora.losses.combined import CompositeLoss, build_loss
from samlora.losses.dice import bce_loss, soft_dice_loss
from samlora.losses.iou import iou_l1_loss, mask_iou
from samlora.losses.tversky import focal_tversky_loss

__all__ = ["CompositeLoss", "bce_loss", "build_loss", "focal_tversky_loss", "iou_l1_loss",
           "mask_iou", "soft_cldice_loss", "soft_dice_loss", "soft_skeleton"]
