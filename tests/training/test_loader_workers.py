"""Training with DataLoader worker processes (params.yaml's train.num_workers: 2), augmented.

Every other training test loads data in the main process (num_workers 0). This one runs
train_run as params.yaml configures it, less the sizes: worker processes, augmentation
on, validation carved from the training cases.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.data.datasets import SegmentationDataset
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.training.loop import train_run
from samlora.training.state import WEIGHTS, load_weights

FOV_CFG = {"red_threshold": 0.1, "radius": 3}


@pytest.fixture(scope="module")
def drive3(drive_subset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DRIVE 21, 22, 23 (train) and 01 (test) prepared at native size: ``<tmp>/drive``."""
    out = tmp_path_factory.mktemp("processed") / "drive"
    prepare_dataset("drive", drive_subset(("01", "21", "22", "23")), out, FOV_CFG,
                    policy=PreparePolicy(allow_subset=True))
    return out


def test_training_with_worker_processes(repo_root: Path, drive3: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    assert cfg.train.num_workers == 2 and cfg.train.augment.rot90  # what this test covers
    cfg = OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(drive3.parent)},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "methods": {"topolora_sam": {"backbone": "sam_tiny", "adapter": {"hidden": 8}}},
        "train": {"epochs": 1, "grad_accum": 1, "device": "cpu"},
    })
    # Record which process loads each item (forked workers inherit the wrapper).
    pids = tmp_path / "pids.txt"
    getitem = SegmentationDataset.__getitem__

    def recording(self, i):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        return getitem(self, i)

    monkeypatch.setattr(SegmentationDataset, "__getitem__", recording)
    run = tmp_path / "run"
    row = train_run(cfg, "topolora_sam", "drive", 0, run, models_dir=run)
    assert row["epoch"] == 1 and row["train_loss"] > 0 and 0 <= row["val_dice"] <= 1
    tensors, manifest = load_weights(run / WEIGHTS)
    assert tensors and int(manifest["trainable"]) > 0
    loaded_by = pids.read_text().split()
    assert len(loaded_by) == 3  # 2 training items + 1 validation item
    assert str(os.getpid()) not in loaded_by  # all in worker processes
