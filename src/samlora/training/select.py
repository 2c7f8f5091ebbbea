"""Which weights a run keeps: the epoch ``train.select`` picks, carried across a resume.

``train.select`` is ``val_dice`` (the highest validation Dice; TopoLoRA-SAM's code selects
on it), ``val_loss`` (the lowest validation loss), ``train_loss`` (the lowest training
loss, as SAM2LoRA's code keeps) or ``last``. Validation runs every ``train.val_every``
epochs and at the last epoch, or, with ``train.val_every_steps: N``, after every N-th
optimiser step of the run and the last one (for step-sized runs; the kept step is in
``selected_step``); only those are candidates for the ``val_*`` rules. A
strictly better score replaces the kept weights, so of equal scores the earliest wins. A
run without a validation split keeps its last epoch under a ``val_*`` rule, and says so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

RULES = {"val_dice": ("val_dice", max), "val_loss": ("val_loss", min),
         "train_loss": ("train_loss", min), "last": (None, None)}


def validation_due(epoch: int, epochs: int, val_every: int) -> bool:
    """True when 0-based ``epoch`` validates: every ``val_every`` epochs, and the last."""
    return (epoch + 1) % max(1, int(val_every)) == 0 or epoch + 1 == epochs


@dataclass
class Selection:
    """The kept weights so far: by which rule, from which epoch (1-based), their score."""

    by: str
    epoch: int = 0
    score: float | None = None
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    step: int | None = None  # the optimiser step, for step-wise validation

    @property
    def reads_validation(self) -> bool:
        """Whether the rule scores validation (``val_dice``, ``val_loss``)."""
        return str(RULES[self.by][0] or "").startswith("val_")

    def __post_init__(self) -> None:
        if self.by not in RULES:
            raise ValueError(f"train.select: {self.by!r} is not one of {list(RULES)}")

    def offer(self, row: Mapping[str, Any], weights: Callable[[], dict[str, torch.Tensor]]
              ) -> bool:
        """Consider the epoch of history ``row``; keep ``weights()`` when it is better."""
        key, better = RULES[self.by]
        if key is None:
            self.epoch, self.score, self.state = int(row["epoch"]), None, None
            self.step = row.get("step")
            return True
        value = row.get(key)
        if value is None or not math.isfinite(float(value)):
            return False
        if self.score is None or better(float(value), self.score) != self.score:
            self.epoch, self.score, self.state = int(row["epoch"]), float(value), weights()
            self.step = None if row.get("step") is None else int(row["step"])
            return True
        return False

    def final(self, last: dict[str, torch.Tensor], epochs: int) -> dict[str, torch.Tensor]:
        """The weights to write at the end of training (``last`` when nothing was kept)."""
        if self.state is None:
            if self.by != "last":
                log.warning("train.select is %s but no epoch had a %s (no validation split?): "
                            "keeping the last epoch", self.by, RULES[self.by][0])
            self.epoch = epochs
            return last
        return self.state

    def to_state(self) -> dict[str, Any]:
        return {"by": self.by, "epoch": self.epoch, "score": self.score, "model": self.state,
                "step": self.step}

    @classmethod
    def from_state(cls, by: str, saved: Mapping[str, Any] | None) -> Selection:
        if not saved or saved.get("by") != by:
            return cls(by)
        return cls(by, int(saved["epoch"]), saved["score"], saved["model"], saved.get("step"))

    def manifest(self) -> dict[str, str]:
        return {"selected_by": self.by, "selected_epoch": str(self.epoch),
                "selected_step": "" if self.step is None else str(self.step),
                "selected_score": "" if self.score is None else repr(self.score)}
