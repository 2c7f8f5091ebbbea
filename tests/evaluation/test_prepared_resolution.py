"""A dataset prepared at ``data.resolution: 256`` is predicted and scored at native size.

DRIVE (565×584 w×h) prepared at longest side 256 gives 248×256 images; a run trained on
them predicts maps that the predict step maps back to 565×584 (index.csv's native_height
and native_width), and the evaluate step scores them against the native-size masks kept
under ``native/``, which are the official masks themselves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.data.io import read_mask
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.evaluation.metrics import compute_metrics
from samlora.steps import run_evaluate, run_predict
from samlora.training.loop import train_run
from samlora.utils.io import read_prob_png

FOV_CFG = {"red_threshold": 0.1, "radius": 3}
NATIVE_HW = (584, 565)
TEST = ("01", "02")


def test_predictions_come_back_at_native_size(repo_root: Path, mirror: Path, drive_subset,
                                              tmp_path: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    cfg = OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(tmp_path / "processed"), "resolution": 256,
                 "allow_subset": True},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "methods": {"topolora_sam": {"backbone": "sam_tiny", "adapter": {"hidden": 8}}},
        "train": {"epochs": 1, "grad_accum": 1, "num_workers": 0, "device": "cpu"},
    })
    processed = tmp_path / "processed" / "drive"
    prepare_dataset("drive", drive_subset((*TEST, "21", "22")), processed, FOV_CFG,
                    policy=PreparePolicy.from_config(cfg.data, "drive"))
    index = pd.read_csv(processed / "index.csv", dtype=str, keep_default_na=False)
    assert set(zip(index["height"], index["width"])) == {("256", "248")}
    assert set(zip(index["native_height"], index["native_width"])) == {("584", "565")}

    run = tmp_path / "run"
    train_run(cfg, "topolora_sam", "drive", 0, run, models_dir=run)
    out = tmp_path / "results"
    run_predict(cfg, argparse.Namespace(run=run, test_set="drive", out=out, models_dir=run))
    cases = [f"drive_{n}" for n in TEST]
    assert sorted(p.stem for p in (out / "probs").glob("*.png")) == cases
    probs = {case: read_prob_png(out / "probs" / f"{case}.png") for case in cases}
    assert {p.shape for p in probs.values()} == {NATIVE_HW}

    run_evaluate(cfg, argparse.Namespace(pred=out, test_set="drive"))
    every = pd.read_csv(out / "metrics_per_image.csv", dtype={"case": str})
    assert sorted(every["mode"].unique()) == sorted(cfg.evaluate.modes)
    for _, rows in every.groupby("mode"):  # each mode scores every case once
        assert sorted(rows["case"]) == cases
    table = every[every["mode"] == "native_fov"].set_index("case")
    metrics = list(cfg.evaluate.metrics)
    for case, num in zip(cases, TEST, strict=True):
        # the scores are those against the official (native-size) mask and FOV
        gt = read_mask(mirror / "DRIVE/test/1st_manual" / f"{num}_manual1.gif")
        fov = read_mask(mirror / "DRIVE/test/mask" / f"{num}_test_mask.gif")
        expected = compute_metrics(probs[case], gt, fov, cfg.evaluate.threshold, metrics)
        for name in metrics:
            assert table.loc[case, name] == pytest.approx(expected[name], abs=1e-9), name
            if name not in ("mcc", "hd95", "assd", "betti0_error", "betti1_error"):
                assert 0.0 <= table.loc[case, name] <= 1.0, name
