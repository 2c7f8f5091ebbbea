"""sam2lora and the four baselines through the whole run: train, predict, evaluate.

tests/training/test_every_method_trains.py steps their models; here each goes through
``train_run`` -> the predict step -> the evaluate step on real DRIVE cases, on the tiny
backbone of its family or architecture (random weights), 1 epoch. Each run's per-image
metrics must cover every test case (and, for sam2lora, every prompt mode) in [0, 1], and
its probability maps must not be constant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.steps import run_evaluate, run_predict
from samlora.training.loop import train_run
from samlora.utils.io import read_prob_png

from .conftest import TEST_CASES

SIZE = 64  # px; a multiple of 32 (SAM 2, Mask2Former)
#: method -> the tiny backbone of params.yaml that stands in for its real-size one
TINY = {"sam2lora": "sam2_tiny", "unet_r34": "unet_tiny", "deeplabv3p_r50": "deeplabv3p_tiny",
        "segformer_b0": "segformer_tiny", "mask2former_swin_t": "mask2former_tiny"}


#: Metrics whose values are not in [0, 1]: MCC in [-1, 1], distances in px and counts.
RANGES = {"mcc": (-1.0, 1.0), "hd95": (0.0, 1e4), "assd": (0.0, 1e4),
          "betti0_error": (0.0, 1e7), "betti1_error": (0.0, 1e7)}


@pytest.mark.parametrize("method", list(TINY))
def test_method_trains_predicts_and_scores(repo_root: Path, drive_processed_val: Path,
                                           tmp_path: Path, method: str) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    backbone = TINY[method]
    assert cfg.backbones[backbone].get("pretrained") is None  # random weights, offline
    cfg = OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(drive_processed_val.parent)},
        "backbones": {backbone: {"img_size": SIZE}},
        "methods": {method: {"backbone": backbone}},
        "train": {"epochs": 1, "grad_accum": 1, "num_workers": 0, "device": "cpu"},
    })
    run = tmp_path / "runs" / method / "drive" / "seed0"
    row = train_run(cfg, method, "drive", 0, run, models_dir=run)
    assert row["epoch"] == 1 and np.isfinite(row["train_loss"]) and 0 <= row["val_dice"] <= 1

    out = tmp_path / "results" / method / "drive" / "seed0" / "drive"
    run_predict(cfg, argparse.Namespace(run=run, test_set="drive", out=out, models_dir=run))
    run_evaluate(cfg, argparse.Namespace(pred=out, test_set="drive"))

    table = pd.read_csv(out / "metrics_per_image.csv", dtype={"seed": str, "case": str})
    assert sorted(table["mode"].unique()) == sorted(cfg.evaluate.modes)
    table = table[table["mode"] == "native_fov"]
    modes = list(cfg.methods[method].prompts.eval_modes) if method == "sam2lora" else ["none"]
    cases = [f"drive_{n}" for n in TEST_CASES]
    by_mode = table.groupby("prompt") if "prompt" in table else [("none", table)]
    assert sorted(m for m, _ in by_mode) == sorted(modes)
    for mode, rows in by_mode:
        assert sorted(rows["case"]) == cases, mode
        for metric in cfg.evaluate.metrics:
            values = rows[metric].astype(float)
            low, high = RANGES.get(metric, (0.0, 1.0))
            assert values.between(low, high).all(), (mode, metric, values.tolist())
        for case in cases:
            folder = out / "probs" if mode == "none" else out / "probs" / mode
            prob = read_prob_png(folder / f"{case}.png")
            assert prob.shape == (584, 565)
            assert len(np.unique(prob)) > 1, (mode, case)  # not a constant map
