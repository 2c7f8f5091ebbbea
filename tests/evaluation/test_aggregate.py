"""aggregate on synthetic per-image CSVs with known means and standard deviations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from samlora.evaluation.aggregate import aggregate, read_per_image

# per-seed mean Dice 0.7, 0.8, 0.9 -> mean 0.8, std (ddof=1) 0.1
DICE = {"0": (0.6, 0.8), "1": (0.7, 0.9), "2": (0.85, 0.95)}


def _write(path: Path, method: str, train: str, test: str, seed: str, rows: list[dict]) -> Path:
    frame = pd.DataFrame([{"method": method, "train_set": train, "test_set": test, "seed": seed,
                           **r} for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def csvs(tmp_path: Path) -> list[Path]:
    paths = []
    for seed, (d1, d2) in DICE.items():
        rows = [{"case": "01", "dice": d1, "auc": 0.9}, {"case": "02", "dice": d2, "auc": 0.95}]
        paths.append(_write(tmp_path / f"r/main/topo/drive/seed{seed}/drive/metrics_per_image.csv",
                            "topo", "drive", "drive", seed, rows))
    rows = [{"case": "11L", "dice": 0.5, "auc": float("nan")},
            {"case": "12L", "dice": 0.7, "auc": 0.8}]
    paths.append(_write(tmp_path / "r/main/topo/drive/seed0/chase_db1/metrics_per_image.csv",
                        "topo", "drive", "chase_db1", "0", rows))
    return paths


def test_means_and_stds_over_seeds(csvs: list[Path], tmp_path: Path) -> None:
    summary = aggregate(csvs, tmp_path / "out/summary.csv", tmp_path / "out/metrics.json")
    assert list(summary.columns) == ["method", "train_set", "test_set", "dice_mean", "dice_std",
                                     "auc_mean", "auc_std", "n_seeds", "n_images"]
    drive = summary.set_index("test_set").loc["drive"]
    assert drive["dice_mean"] == pytest.approx(0.8)
    assert drive["dice_std"] == pytest.approx(0.1)
    assert drive["auc_mean"] == pytest.approx(0.925) and drive["auc_std"] == pytest.approx(0.0)
    assert (drive["n_seeds"], drive["n_images"]) == (3, 2)
    chase = summary.set_index("test_set").loc["chase_db1"]
    assert chase["dice_mean"] == pytest.approx(0.6)
    assert chase["auc_mean"] == pytest.approx(0.8)  # the one-class (nan) image is skipped
    assert math.isnan(chase["dice_std"]) and chase["n_seeds"] == 1
    on_disk = pd.read_csv(tmp_path / "out/summary.csv")
    pd.testing.assert_frame_equal(on_disk, summary, check_dtype=False)


def test_metrics_json_is_nested_for_dvc(csvs: list[Path], tmp_path: Path) -> None:
    aggregate(csvs, tmp_path / "summary.csv", tmp_path / "metrics.json")
    nested = json.loads((tmp_path / "metrics.json").read_text())
    leaf = nested["topo"]["drive"]["drive"]
    assert leaf["dice"] == pytest.approx(0.8) and leaf["dice_std"] == pytest.approx(0.1)
    assert leaf["n_seeds"] == 3 and leaf["n_images"] == 2
    assert nested["topo"]["drive"]["chase_db1"]["dice_std"] is None  # nan -> null


def test_glob_and_duplicates(csvs: list[Path], tmp_path: Path) -> None:
    table = read_per_image(str(tmp_path / "r/**/metrics_per_image.csv"))
    assert len(table) == 8 and set(table["seed"]) == {"0", "1", "2"} and "01" in set(table["case"])
    with pytest.raises(ValueError, match="duplicated"):
        read_per_image([csvs[0], csvs[0]])
    with pytest.raises(FileNotFoundError, match="nothing|no per-image"):
        read_per_image(str(tmp_path / "nowhere/*.csv"))
