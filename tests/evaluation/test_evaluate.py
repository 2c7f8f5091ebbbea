"""evaluate_predictions on real DRIVE masks with probability maps written in tmp."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samlora.evaluation.evaluate import evaluate_predictions, read_mask_png
from samlora.evaluation.metrics import compute_metrics
from samlora.utils.io import write_prob_png

META = {"method": "human", "train_set": "none", "test_set": "drive", "seed": "0"}
METRICS = ["dice", "iou", "auc", "cldice"]


def _index(processed: Path) -> pd.DataFrame:
    return pd.read_csv(processed / "index.csv", dtype=str, keep_default_na=False)


def _write_second_observer(processed: Path, probs: Path) -> None:
    for row in _index(processed).query("split == 'test'").itertuples():
        obs2 = read_mask_png(processed / row.mask2)
        write_prob_png(probs / f"{row.case}.png", obs2.astype(float))


def test_second_observer_as_prediction(drive_processed: Path, tmp_path: Path) -> None:
    probs, out = tmp_path / "probs", tmp_path / "out"
    _write_second_observer(drive_processed, probs)
    table = evaluate_predictions(drive_processed, probs, out, 0.5, METRICS, META)
    test = _index(drive_processed).query("split == 'test'")
    assert list(table.columns) == ["method", "train_set", "test_set", "seed", "mode", "case",
                                   *METRICS]
    assert list(table["case"]) == list(test["case"])  # test split only, index order
    for row, (_, idx) in zip(table.itertuples(), test.iterrows()):
        direct = compute_metrics(
            read_mask_png(drive_processed / idx["mask2"]).astype(np.float32),
            read_mask_png(drive_processed / idx["mask"]),
            read_mask_png(drive_processed / idx["fov"]),
        )
        assert {m: getattr(row, m) for m in METRICS} == pytest.approx(direct)
    assert 0.75 < table["dice"].mean() < 0.85
    on_disk = pd.read_csv(out / "metrics_per_image.csv", dtype={"seed": str, "case": str})
    pd.testing.assert_frame_equal(on_disk, table)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["n"] == len(test)
    assert summary["dice"]["mean"] == pytest.approx(table["dice"].mean())
    assert summary["dice"]["std"] == pytest.approx(table["dice"].std(ddof=1))
    assert summary["meta"] == META and summary["threshold"] == 0.5
    assert not list(out.glob(".*tmp*"))  # no temporary files left behind


def test_missing_prediction_names_the_file(drive_processed: Path, tmp_path: Path) -> None:
    probs, out = tmp_path / "probs", tmp_path / "out"
    _write_second_observer(drive_processed, probs)
    (probs / "drive_02.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"probs/drive_02\.png"):
        evaluate_predictions(drive_processed, probs, out, 0.5, METRICS, META)
    assert not out.exists() or not any(out.iterdir())


def test_wrong_size_prediction_names_the_file(drive_processed: Path, tmp_path: Path) -> None:
    probs, out = tmp_path / "probs", tmp_path / "out"
    _write_second_observer(drive_processed, probs)
    write_prob_png(probs / "drive_03.png", np.zeros((292, 282)))  # half size
    with pytest.raises(ValueError, match=r"drive_03\.png is 282×292"):
        evaluate_predictions(drive_processed, probs, out, 0.5, ["dice"], META)
    assert not (out / "metrics_per_image.csv").exists()


def test_soft_predictions_and_threshold(drive_processed: Path, tmp_path: Path) -> None:
    """A blurred-noisy map of the ground truth: AUC high, and threshold moves Dice."""
    probs = tmp_path / "probs"
    rng = np.random.default_rng(0)
    for row in _index(drive_processed).query("split == 'test'").itertuples():
        gt = read_mask_png(drive_processed / row.mask)
        prob = np.clip(0.7 * gt + 0.3 * rng.random(gt.shape), 0, 1)
        write_prob_png(probs / f"{row.case}.png", prob)
    t_low = evaluate_predictions(drive_processed, probs, tmp_path / "a", 0.5, METRICS, META)
    t_high = evaluate_predictions(drive_processed, probs, tmp_path / "b", 0.95, METRICS, META)
    assert (t_low["auc"] == 1.0).all()  # every vessel pixel scores >= 0.7 > every background
    assert (t_low["dice"] == 1.0).all()
    assert (t_high["dice"] < 0.5).all()
    assert t_low["auc"].tolist() == t_high["auc"].tolist()


def test_meta_must_name_the_run(drive_processed: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed"):
        evaluate_predictions(drive_processed, tmp_path, tmp_path / "out", 0.5, ["dice"],
                             {"method": "m", "train_set": "a", "test_set": "b"})


def test_missing_index_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="index.csv"):
        evaluate_predictions(tmp_path, tmp_path, tmp_path / "out", 0.5, ["dice"], META)


def test_mask_reader_thresholds_palette_gif(mirror: Path) -> None:
    mask = read_mask_png(mirror / "DRIVE/test/2nd_manual/01_manual2.gif")
    with Image.open(mirror / "DRIVE/test/2nd_manual/01_manual2.gif") as im:
        assert (mask == (np.asarray(im) == 1)).all()  # palette index 1 = vessel
