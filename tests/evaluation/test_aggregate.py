"""aggregate on synthetic per-image CSVs with known means and standard deviations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samlora.evaluation.aggregate import aggregate, read_per_image, write_comparisons
from samlora.evaluation.stats import bootstrap_ci

# per-seed mean Dice 0.7, 0.8, 0.9 -> mean 0.8, std (ddof=1) 0.1
DICE = {"0": (0.6, 0.8), "1": (0.7, 0.9), "2": (0.85, 0.95)}
#: Bootstrap interval columns, appended after the existing summary columns.
CI_COLUMNS = ["dice_ci_low", "dice_ci_high", "auc_ci_low", "auc_ci_high"]


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
    assert list(summary.columns) == ["method", "train_set", "test_set", "mode", "dice_mean",
                                     "dice_std",
                                     "auc_mean", "auc_std", "n_seeds", "n_images",
                                     *CI_COLUMNS]
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


def test_summary_confidence_intervals(csvs: list[Path], tmp_path: Path) -> None:
    summary = aggregate(csvs, tmp_path / "s.csv", tmp_path / "m.json", n_resamples=300)
    drive = summary.set_index("test_set").loc["drive"]
    assert drive["dice_ci_low"] <= drive["dice_mean"] <= drive["dice_ci_high"]
    # every resample mean lies between the smallest and largest image values
    assert 0.6 <= drive["dice_ci_low"] and drive["dice_ci_high"] <= 0.95
    table = read_per_image(csvs)
    expected = bootstrap_ci(table[table["test_set"] == "drive"], "dice", n_resamples=300)
    assert (drive["dice_ci_low"], drive["dice_ci_high"]) == pytest.approx(expected)
    # chase_db1: one seed, auc has a single finite image -> the interval is that value
    chase = summary.set_index("test_set").loc["chase_db1"]
    assert chase["auc_ci_low"] == pytest.approx(0.8) and chase["auc_ci_high"] == pytest.approx(0.8)
    on_disk = pd.read_csv(tmp_path / "s.csv")
    pd.testing.assert_frame_equal(on_disk, summary, check_dtype=False)
    nested = json.loads((tmp_path / "m.json").read_text())
    assert "dice_ci_low" not in nested["topo"]["drive"]["drive"]  # JSON unchanged
    plain = aggregate(csvs, tmp_path / "p.csv", tmp_path / "p.json", n_resamples=0)
    assert list(plain.columns) == list(summary.columns[:10])


def test_write_comparisons(csvs: list[Path], tmp_path: Path) -> None:
    # "base" on the drive test set, below topo's seed-averaged Dice (2.15/3, 2.65/3) on both
    base = _write(tmp_path / "r/main/base/drive/seed0/drive/metrics_per_image.csv", "base",
                  "drive", "drive", "0", [{"case": "01", "dice": 0.66, "auc": 0.9},
                                          {"case": "02", "dice": 0.83, "auc": 0.95}])
    out = write_comparisons([*csvs, base], "base", tmp_path / "cmp/comparisons.csv")
    assert (tmp_path / "cmp/comparisons.csv").is_file()
    dice = out.set_index("metric").loc["dice"]
    assert (dice["test_set"], dice["method"], dice["reference"]) == ("drive", "topo", "base")
    assert dice["n"] == 2 and dice["effect_size"] == 1.0
    assert dice["median_diff"] == pytest.approx((2.15 / 3 - 0.66 + 2.65 / 3 - 0.83) / 2)
    assert dice["p"] == pytest.approx(0.5)  # exact two-sided p of 2 positive pairs
    auc = out.set_index("metric").loc["auc"]
    assert auc["n"] == 2 and np.isnan(auc["p"])  # all differences zero
    assert len(out) == 2  # chase_db1 has no base run to pair with
    only_dice = write_comparisons([*csvs, base], "base", tmp_path / "c2.csv", metrics=["dice"])
    assert list(only_dice["metric"]) == ["dice"]


def test_a_prompted_method_gets_its_mean_and_std_over_modes(tmp_path: Path) -> None:
    """SAM2LoRA's bars: the mean over the evaluation modes, the error bar their std."""
    import pandas as pd

    from samlora.evaluation.aggregate import ALL_MODES, aggregate

    ids = {"method": "sam2lora", "train_set": "u", "test_set": "drive", "seed": "0"}
    rows = [{**ids, "prompt": mode, "case": c, "dice": d}
            for mode, per_case in (("none", (0.2, 0.4)), ("1pt", (0.5, 0.7)),
                                   ("box", (0.8, 0.8)))
            for c, d in zip(("a", "b"), per_case)]
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    summary = aggregate([tmp_path / "p.csv"], tmp_path / "s.csv", tmp_path / "m.json",
                        n_resamples=0)
    row = summary[summary["prompt"] == ALL_MODES].iloc[0]
    assert row["dice_mean"] == pytest.approx((0.3 + 0.6 + 0.8) / 3)
    assert row["dice_std"] == pytest.approx(pd.Series([0.3, 0.6, 0.8]).std(ddof=1))
    assert len(summary) == 4
