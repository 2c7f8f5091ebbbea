"""Segmentation losses on logits: BCE, soft Dice, soft clDice and their weighted sum."""

from samlora.losses.cldice import soft_cldice_loss, soft_skeleton
from samlora.losses.combined import build_loss
from samlora.losses.dice import bce_loss, soft_dice_loss

__all__ = ["bce_loss", "build_loss", "soft_cldice_loss", "soft_dice_loss", "soft_skeleton"]
