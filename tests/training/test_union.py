"""A union run trains on several real prepared datasets, each member's draws its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.study.studies import expand
from samlora.training.data import UnionDataset, run_datasets, train_loader
from samlora.training.loop import train_spec


@pytest.fixture(scope="module")
def two_sets(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from samlora.data.policy import PreparePolicy
    from samlora.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("union") / "processed"
    fov = {"red_threshold": 0.1, "radius": 3}
    prepare_dataset("drive", mirror / "DRIVE", out / "drive", fov)
    prepare_dataset("stare", mirror / "STARE", out / "stare", fov,
                    policy=PreparePolicy(allow_subset=True))
    return out


def _cfg(repo_root: Path, processed: Path, sampling: str):
    cfg = load_config([repo_root / "params.yaml", repo_root / "presets/demo.yaml"])
    cfg = OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(processed), "datasets": ["drive", "stare"]},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "train": {"epochs": 1, "batch_size": 4, "num_workers": 0},
        "studies": {"enabled": ["u"], "u": {
            "methods": ["decoder_only_tiny"], "seeds": [0],
            "protocols": [{"train": ["drive", "stare"], "name": "ds", "sampling": sampling,
                           "test": ["drive"]}]}}})
    OmegaConf.set_struct(cfg, False)
    return cfg


@pytest.mark.parametrize("sampling", ["proportional", "balanced"])
def test_union_draws_from_every_member(repo_root: Path, two_sets: Path, sampling: str) -> None:
    (spec,) = expand(_cfg(repo_root, two_sets, sampling), ["u"])["u"].runs
    train, val = run_datasets(spec, 64)
    assert isinstance(train, UnionDataset) and isinstance(val, UnionDataset)
    members = [len(ds) for ds in train.datasets]
    assert members == [16, 8]  # DRIVE 20 and STARE 10 train cases, 20 % carved for validation
    train.set_epoch(0)
    seen = [c for batch in train_loader(train, spec, 0) for c in batch["case"]]
    assert len(seen) == sum(members)
    counts = {m: sum(c.startswith(m) for c in seen) for m in ("drive", "stare")}
    if sampling == "proportional":  # every case once
        assert sorted(seen) == sorted(train.cases)
    else:  # each member equally likely, with replacement: STARE drawn about as often
        assert counts["stare"] > 8 * 0.6 and counts["drive"] > 0
    again = [c for batch in train_loader(train, spec, 0) for c in batch["case"]]
    assert again == seen  # seeded by run seed and epoch


def test_members_do_not_share_augmentation_draws(repo_root: Path, two_sets: Path) -> None:
    (spec,) = expand(_cfg(repo_root, two_sets, "proportional"), ["u"])["u"].runs
    train, _ = run_datasets(spec, 64)
    a, b = train.datasets
    assert [a.sample_rng(0).random() for _ in range(1)] != [b.sample_rng(0).random()]


def test_a_union_run_trains_and_records_its_members(repo_root: Path, two_sets: Path,
                                                    tmp_path: Path) -> None:
    (spec,) = expand(_cfg(repo_root, two_sets, "balanced"), ["u"])["u"].runs
    row = train_spec(spec, tmp_path / spec.name, models_dir=tmp_path)
    assert row["epoch"] == 1 and row["train_loss"] > 0 and "val_dice" in row
    import yaml

    saved = yaml.safe_load((tmp_path / spec.name / "config.yaml").read_text())
    assert saved["train_sets"] == ["drive", "stare"] and saved["sampling"] == "balanced"
    state = torch.load(tmp_path / spec.name / "last.pt", weights_only=True)
    assert state["run_hash"] == saved["run_hash"]


def test_a_step_schedule_stops_after_exactly_its_steps(repo_root: Path, two_sets: Path,
                                                       tmp_path: Path) -> None:
    """train.steps = 5 with 2 optimiser steps per epoch (STARE's 8 train cases, batch 4):
    three epochs, the last one cut after its first step; warm restarts every 2 steps."""
    cfg = _cfg(repo_root, two_sets, "proportional")
    cfg.studies.u.protocols = [{"train": "stare", "test": ["stare"]}]
    cfg.methods.decoder_only_tiny.train = {"steps": 5, "schedule": "cosine_restarts",
                                      "restart_steps": 2, "warmup_steps": 0}
    (spec,) = expand(cfg, ["u"])["u"].runs
    assert spec.train["steps"] == 5 and spec.train["epochs"] == 1  # epochs is ignored
    train_spec(spec, tmp_path / "run", models_dir=tmp_path)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert state["scheduler"]["last_epoch"] == 5
    # a restart at step 2 and 4: epochs 2 and 3 start at the full learning rate again
    lrs = [h["lr"] for h in state["history"]]
    assert lrs[0] == lrs[1] == lrs[2] == pytest.approx(spec.train["lr"])
