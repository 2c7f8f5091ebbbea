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


@pytest.fixture(scope="module")
def drive_processed_val(mirror, tmp_path_factory):
    """3 real DRIVE training cases (one carved out for validation) and 3 test cases."""
    from tests.evaluation.conftest import VAL_TRAIN_CASES, build_drive_processed

    return build_drive_processed(mirror, tmp_path_factory.mktemp("processed") / "drive",
                                 VAL_TRAIN_CASES)


def _step_cfg(repo_root, processed, select: str = "val_dice"):
    from omegaconf import OmegaConf

    from samlora.config import load_config

    cfg = load_config([repo_root / "params.yaml"])
    return OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(processed.parent)},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "methods": {"topolora_sam": {"backbone": "sam_tiny", "adapter": {"hidden": 8}}},
        # params.yaml's augmentation stays on; 2 train images per step, 3 epochs of 1 step
        "train": {"steps": 5, "batch_size": 1, "grad_accum": 1, "num_workers": 0,
                  "device": "cpu", "lr": 5e-3, "val_every_steps": 3, "select": select},
    })


def test_step_wise_validation_selects_a_step_and_survives_a_kill(
        repo_root, drive_processed_val, tmp_path, monkeypatch) -> None:
    """train.val_every_steps: validation after step 3 and the last (5), the better one
    kept; a run killed after its first epoch resumes to the same checks and weights."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from samlora.training import loop
    from samlora.training.loop import train_run

    cfg = _step_cfg(repo_root, drive_processed_val)
    ref = tmp_path / "ref"
    train_run(cfg, "topolora_sam", "drive", 0, ref, models_dir=ref)
    hist = torch.load(ref / "last.pt", map_location="cpu", weights_only=True)["history"]
    checks = [c for h in hist for c in h.get("checks", [])]
    assert [c["step"] for c in checks] == [3, 5]  # step 3 is mid-way through epoch 2
    assert [h["epoch"] for h in hist] == [1, 2, 3] and "checks" not in hist[0]
    best = max(checks, key=lambda c: c["val_dice"])  # ties keep the earlier step
    with safe_open(str(ref / "adapter.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert meta["selected_step"] == str(best["step"]) and meta["selected_by"] == "val_dice"
    assert meta["selected_epoch"] == str(best["epoch"])
    assert float(meta["selected_score"]) == pytest.approx(best["val_dice"])

    killed = tmp_path / "killed"
    real_save, calls = loop.save_resume_state, []

    def save_then_die(run_dir, state):
        real_save(run_dir, state)
        calls.append(state["epoch"])
        if len(calls) == 1 and state["epoch"] < len(hist):
            raise KeyboardInterrupt  # killed right after the first checkpoint

    monkeypatch.setattr(loop, "save_resume_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, "topolora_sam", "drive", 0, killed, models_dir=killed)
    assert not (killed / "adapter.safetensors").exists()
    train_run(cfg, "topolora_sam", "drive", 0, killed, models_dir=killed)
    again = torch.load(killed / "last.pt", map_location="cpu", weights_only=True)["history"]
    assert again == hist  # every check of every epoch, bit for bit
    a, b = load_file(ref / "adapter.safetensors"), load_file(killed / "adapter.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with safe_open(str(killed / "adapter.safetensors"), framework="pt") as f:
        assert f.metadata()["selected_step"] == meta["selected_step"]
