"""train.select: the kept epoch, on known histories and through a real (resumed) run."""

from __future__ import annotations

import torch
import pytest

from samlora.training.select import Selection, validation_due

ROWS = [{"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_dice": 0.30},
        {"epoch": 2, "train_loss": 0.7, "val_loss": 0.6, "val_dice": 0.50},
        {"epoch": 3, "train_loss": 0.5, "val_loss": 0.7, "val_dice": 0.50},
        {"epoch": 4, "train_loss": 0.4}]  # no validation this epoch


@pytest.mark.parametrize("by, epoch, score", [("val_dice", 2, 0.50), ("val_loss", 2, 0.6),
                                              ("train_loss", 4, 0.4), ("last", 4, None)])
def test_each_rule_keeps_its_epoch(by: str, epoch: int, score: float | None) -> None:
    sel = Selection(by)
    for row in ROWS:
        sel.offer(row, lambda row=row: {"w": torch.tensor([float(row["epoch"])])})
    last = {"w": torch.tensor([4.0])}
    kept = sel.final(last, epochs=4)
    assert sel.epoch == epoch and sel.score == score
    assert kept["w"].item() == epoch  # ties (epoch 3's equal Dice) keep the earlier epoch
    assert sel.manifest()["selected_epoch"] == str(epoch)


def test_state_round_trip_and_fallback() -> None:
    sel = Selection("val_dice")
    sel.offer(ROWS[1], lambda: {"w": torch.ones(1)})
    back = Selection.from_state("val_dice", sel.to_state())
    assert (back.epoch, back.score) == (2, 0.5) and torch.equal(back.state["w"], torch.ones(1))
    assert Selection.from_state("val_loss", sel.to_state()).epoch == 0  # another rule: fresh
    none = Selection("val_dice")
    none.offer({"epoch": 1, "train_loss": 1.0}, lambda: {})
    assert none.final({"w": torch.zeros(1)}, epochs=3)["w"].item() == 0 and none.epoch == 3
    with pytest.raises(ValueError, match="train.select"):
        Selection("best")


def test_validation_every_n_epochs_and_the_last() -> None:
    assert [validation_due(e, 7, 3) for e in range(7)] == [False, False, True, False, False,
                                                           True, True]
