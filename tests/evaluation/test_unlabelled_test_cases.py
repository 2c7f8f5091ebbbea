"""Test cases without a reference label (DRIVE's current download): predicted, not scored.

The current DRIVE release (``training.zip`` + ``test.zip``, the latter without
``1st_manual``/``2nd_manual``) is built from the mirror's files, fetched, prepared, trained
on (a tiny baseline, 1 epoch, CPU), predicted and evaluated: every test case gets its map,
none is scored, and ``metrics.json``, the log and the aggregated summary say so. A folder
where only some test cases lack a label scores the others.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.data.datasets import SegmentationDataset
from samlora.data.download import fetch_dataset
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.evaluation.aggregate import aggregate
from samlora.evaluation.evaluate import evaluate_predictions
from samlora.steps import run_evaluate, run_predict
from samlora.training.loop import train_run
from samlora.utils.io import read_prob_png, write_prob_png

from .conftest import TEST_CASES, build_drive_processed, drive_gif

FOV_CFG = {"red_threshold": 0.1, "radius": 3}
META = {"method": "m", "train_set": "drive", "test_set": "drive", "seed": "0"}
NOTE = ("2 test cases have no reference label in this release (current DRIVE download, "
        "training.zip + test.zip; the legacy DRIVE.zip labels them); predicted, not scored")


def _current_release_zips(mirror: Path, dest: Path, train: tuple[str, ...],
                          test: tuple[str, ...]) -> None:
    """``training.zip`` and ``test.zip`` as drive.grand-challenge.org ships them (test.zip:
    ``test/images`` and ``test/mask`` only), holding the cases ``train`` and ``test``."""
    drive = mirror / "DRIVE"
    parts = {"training.zip": (("training", ("images", "1st_manual", "mask"), train)),
             "test.zip": (("test", ("images", "mask"), test))}
    dest.mkdir(parents=True, exist_ok=True)
    for name, (sub, folders, nums) in parts.items():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for folder in folders:
                for src in sorted((drive / sub / folder).iterdir()):
                    if src.name[:2] in nums:
                        zf.write(src, f"{sub}/{folder}/{src.name}")
        (dest / name).write_bytes(buf.getvalue())


@pytest.fixture(scope="module")
def current_drive(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/processed/drive`` prepared from the current release (3 training, 2 test
    cases, a subset), through the placed-archive path of the download step."""
    base = tmp_path_factory.mktemp("current_drive")
    _current_release_zips(mirror, base / "raw" / "drive", ("21", "22", "23"), ("01", "02"))
    root = fetch_dataset("drive", base / "raw", None, base / "lock.json", allow_subset=True)
    out = base / "processed" / "drive"
    prepare_dataset("drive", root, out, FOV_CFG, policy=PreparePolicy(allow_subset=True))
    return out


def test_prepare_keeps_unlabelled_test_cases_with_an_empty_mask(current_drive: Path) -> None:
    index = pd.read_csv(current_drive / "index.csv", dtype=str, keep_default_na=False)
    test = index[index["split"] == "test"]
    assert list(test["case"]) == ["drive_01", "drive_02"]
    assert (test["mask"] == "").all() and (test["fov"] != "").all()
    assert (index.loc[index["split"] == "train", "mask"] != "").all()
    info = json.loads((current_drive / "dataset.json").read_text())
    assert info["unlabelled"]["count"] == 2


def test_an_unlabelled_training_row_is_refused(current_drive: Path, tmp_path: Path) -> None:
    broken = tmp_path / "drive"
    shutil.copytree(current_drive, broken)
    index = pd.read_csv(broken / "index.csv", dtype=str, keep_default_na=False)
    index.loc[index["case"] == "drive_21", "mask"] = ""
    index.to_csv(broken / "index.csv", index=False)
    ds = SegmentationDataset(broken, cases=["drive_21"], size=64)
    with pytest.raises(ValueError, match=r"index\.csv: train case drive_21 has no reference "
                                         r"label"):
        ds[0]


def test_unlabelled_test_cases_are_predicted_but_not_scored(
        repo_root: Path, current_drive: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = OmegaConf.merge(load_config([repo_root / "params.yaml"]), {
        "data": {"processed_dir": str(current_drive.parent)},
        "backbones": {"unet_tiny": {"img_size": 64}},
        "methods": {"unet_r34": {"backbone": "unet_tiny"}},
        "train": {"epochs": 1, "grad_accum": 1, "num_workers": 0, "device": "cpu"},
    })
    run = tmp_path / "runs/unet_r34/drive/seed0"
    train_run(cfg, "unet_r34", "drive", 0, run, models_dir=run)
    out = tmp_path / "results/unet_r34/drive/seed0/drive"
    run_predict(cfg, argparse.Namespace(run=run, test_set="drive", out=out, models_dir=run))
    for case in ("drive_01", "drive_02"):  # predicted, at native size
        prob = read_prob_png(out / "probs" / f"{case}.png")
        assert prob.shape == (584, 565) and np.isfinite(prob).all()
    with caplog.at_level(logging.WARNING, logger="samlora.evaluation"):
        run_evaluate(cfg, argparse.Namespace(pred=out, test_set="drive"))
    assert NOTE in caplog.text and "drive_01, drive_02" in caplog.text
    table = pd.read_csv(out / "metrics_per_image.csv")
    assert table.empty and "dice" in table.columns
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 0 and metrics["dice"]["mean"] is None
    assert metrics["unscored"] == 2 and metrics["unscored_cases"] == ["drive_01", "drive_02"]
    assert metrics["note"] == NOTE
    # The summary keeps the pair, with nothing scored and the note.
    summary = aggregate([out / "metrics_per_image.csv"], tmp_path / "summary.csv",
                        tmp_path / "summary.json")
    (row,) = summary.to_dict("records")
    assert (row["method"], row["train_set"], row["test_set"]) == ("unet_r34", "drive", "drive")
    assert row["n_images"] == 0 and row["n_seeds"] == 1 and np.isnan(row["dice_mean"])
    assert row["n_unscored"] == 2 and row["unscored_note"] == NOTE
    leaf = json.loads((tmp_path / "summary.json").read_text())["unet_r34"]["drive"]["drive"]
    assert leaf["unscored"] == 2 and leaf["note"] == NOTE and leaf["dice"] is None


@pytest.fixture()
def half_labelled(mirror: Path, tmp_path: Path) -> Path:
    """The evaluation fixture's 3 DRIVE test cases, the last one with its label removed,
    and ``probs/`` holding the second observer's map of each (a real, imperfect rater)."""
    out = build_drive_processed(mirror, tmp_path / "processed" / "drive")
    index = pd.read_csv(out / "index.csv", dtype=str, keep_default_na=False)
    last = f"drive_{TEST_CASES[-1]}"
    index.loc[index["case"] == last, ["mask", "mask2"]] = ""
    index.to_csv(out / "index.csv", index=False)
    (out / "masks" / f"{last}.png").unlink()
    for num in TEST_CASES:
        second = drive_gif(mirror / "DRIVE/test/2nd_manual" / f"{num}_manual2.gif")
        write_prob_png(tmp_path / "pred" / "probs" / f"drive_{num}.png", second.astype(float))
    return out


def test_labelled_cases_are_scored_beside_unlabelled_ones(half_labelled: Path,
                                                          tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    table = evaluate_predictions(half_labelled, pred / "probs", pred, 0.5, ["dice"], META)
    assert list(table["case"]) == [f"drive_{n}" for n in TEST_CASES[:-1]]
    assert table["dice"].between(0.6, 0.95).all()  # observer 2 against observer 1
    metrics = json.loads((pred / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["dice"]["n"] == 2
    assert metrics["unscored"] == 1 and metrics["unscored_cases"] == [f"drive_{TEST_CASES[-1]}"]
    assert metrics["note"] == ("1 test case has no reference label in this release; "
                               "predicted, not scored")  # no dataset.json: the plain note
    # The summary counts it from predictions.json, beside the scored pair.
    (pred / "predictions.json").write_text(json.dumps(
        {"cases": [f"drive_{n}" for n in TEST_CASES], **META}))
    summary = aggregate([pred / "metrics_per_image.csv"], tmp_path / "s.csv", tmp_path / "s.json")
    (row,) = summary.to_dict("records")
    assert row["n_images"] == 2 and row["n_unscored"] == 1
    assert row["dice_mean"] == pytest.approx(table["dice"].mean())
    assert row["unscored_note"] == metrics["note"]
    # Its prediction is still required: the unlabelled case was predicted.
    (pred / "probs" / f"drive_{TEST_CASES[-1]}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"drive_{TEST_CASES[-1]}.png"):
        evaluate_predictions(half_labelled, pred / "probs", pred, 0.5, ["dice"], META)


def test_summary_without_unscored_cases_is_unchanged(half_labelled: Path, tmp_path: Path) -> None:
    """A results folder whose predicted cases were all scored adds no unscored columns."""
    pred = tmp_path / "pred"
    index = pd.read_csv(half_labelled / "index.csv", dtype=str, keep_default_na=False)
    index = index[index["case"] != f"drive_{TEST_CASES[-1]}"]
    index.to_csv(half_labelled / "index.csv", index=False)
    evaluate_predictions(half_labelled, pred / "probs", pred, 0.5, ["dice"], META)
    cases = [f"drive_{n}" for n in TEST_CASES[:-1]]
    (pred / "predictions.json").write_text(json.dumps({"cases": cases, **META}))
    summary = aggregate([pred / "metrics_per_image.csv"], tmp_path / "s.csv", tmp_path / "s.json")
    assert "n_unscored" not in summary.columns
    assert "unscored" not in json.loads((tmp_path / "s.json").read_text())["m"]["drive"]["drive"]
