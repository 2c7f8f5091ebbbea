"""Human baseline: DRIVE's second observer against the first, a known answer from the literature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samlora.evaluation.evaluate import META_COLUMNS
from samlora.evaluation.human import confusion_counts, count_metric, human_per_image

FOV_CFG = {"red_threshold": 0.1, "radius": 3}


@pytest.fixture(scope="module")
def drive_full(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All of DRIVE prepared from the mirror (its 20 test cases have a second observer)."""
    from samlora.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("human") / "drive"
    prepare_dataset("drive", mirror / "DRIVE", out, FOV_CFG)
    return out


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def _counts_from_files(processed: Path) -> pd.DataFrame:
    """Per test case: accuracy, sensitivity, specificity of mask2 vs mask inside the FOV,
    straight from the PNGs (independent of samlora's reader)."""
    index = pd.read_csv(processed / "index.csv", dtype=str, keep_default_na=False)
    rows = []
    for row in index[index["split"] == "test"].to_dict("records"):
        gt, second, fov = (_png(processed / row[c]) for c in ("mask", "mask2", "fov"))
        g, p = gt[fov], second[fov]
        tp, tn = np.sum(p & g), np.sum(~p & ~g)
        fp, fn = np.sum(p & ~g), np.sum(~p & g)
        rows.append({"case": row["case"], "accuracy": (tp + tn) / g.size,
                     "sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp)})
    return pd.DataFrame(rows)


def test_drive_second_observer_known_answer(drive_full: Path) -> None:
    direct = _counts_from_files(drive_full)
    assert len(direct) == 20
    # DRIVE 2nd observer, mean over the 20 test images inside the FOV (literature:
    # 0.9472 / 0.7760 / 0.9724; the mean of per-image values here gives these)
    assert direct["accuracy"].mean() == pytest.approx(0.9473, abs=1e-4)
    assert direct["sensitivity"].mean() == pytest.approx(0.7760, abs=1e-4)
    assert direct["specificity"].mean() == pytest.approx(0.9725, abs=1e-4)
    table = human_per_image(drive_full, ["accuracy", "sensitivity", "specificity", "dice"])
    assert list(table.columns) == [*META_COLUMNS, "mode", "case", "accuracy", "sensitivity",
                                   "specificity", "dice"]
    assert set(table["method"]) == {"human"} and set(table["test_set"]) == {"drive"}
    assert set(table["train_set"]) == {"-"} and set(table["seed"]) == {"-"}
    merged = table.merge(direct, on="case", suffixes=("", "_direct"))
    assert len(merged) == 20
    for m in ("accuracy", "sensitivity", "specificity"):
        np.testing.assert_allclose(merged[m], merged[f"{m}_direct"], rtol=0, atol=1e-12)
    # Dice of two binary masks = 2TP / (2TP + FP + FN) = harmonic mean of sens and precision
    assert table["dice"].between(0.7, 0.85).all()


def test_fixture_cases_and_no_second_observer(drive_processed: Path, tmp_path: Path) -> None:
    table = human_per_image(drive_processed, ["dice", "iou"])
    assert list(table["case"]) == ["drive_01", "drive_02", "drive_03"]
    # same mask vs itself -> perfect scores
    index = pd.read_csv(drive_processed / "index.csv", dtype=str, keep_default_na=False)
    index["mask2"] = np.where(index["split"] == "test", index["mask"], "")
    same = tmp_path / "same"
    same.mkdir()
    for sub in ("masks", "fov"):
        (same / sub).symlink_to(drive_processed / sub)
    index.to_csv(same / "index.csv", index=False)
    perfect = human_per_image(same, ["dice", "iou", "accuracy"])
    assert (perfect[["dice", "iou", "accuracy"]] == 1.0).all().all()
    index["mask2"] = ""
    index.to_csv(same / "index.csv", index=False)
    empty = human_per_image(same, ["dice"])
    assert empty.empty and list(empty.columns) == [*META_COLUMNS, "mode", "case", "dice"]


def test_confusion_counts_known_answer() -> None:
    gt = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0], [1, 0, 0, 1]], bool)
    fov = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)  # excludes the last FP
    c = confusion_counts(pred, gt, fov)
    assert c == {"tp": 2, "fp": 1, "fn": 1, "tn": 3}
    assert count_metric("accuracy", c) == pytest.approx(5 / 7)
    assert count_metric("sensitivity", c) == pytest.approx(2 / 3)
    assert count_metric("specificity", c) == pytest.approx(3 / 4)
    assert np.isnan(count_metric("sensitivity", {"tp": 0, "fp": 0, "fn": 0, "tn": 4}))


def test_unknown_metric_is_rejected(drive_processed: Path) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        human_per_image(drive_processed, ["nonsense"])


def test_human_table_aggregates_and_is_a_reference(drive_processed: Path, tmp_path: Path) -> None:
    from samlora.evaluation.aggregate import aggregate, write_comparisons

    human = human_per_image(drive_processed, ["dice"])
    human_csv = tmp_path / "human/drive/metrics_per_image.csv"
    human_csv.parent.mkdir(parents=True)
    human.to_csv(human_csv, index=False)
    # a "model" exactly 0.01 above the second observer on every case, two seeds
    model = pd.concat([human.assign(method="m", train_set="drive", seed=s,
                                    dice=human["dice"] + 0.01) for s in ("0", "1")])
    model_csv = tmp_path / "m/drive/metrics_per_image.csv"
    model_csv.parent.mkdir(parents=True)
    model.to_csv(model_csv, index=False)
    summary = aggregate([human_csv, model_csv], tmp_path / "s.csv", tmp_path / "s.json",
                        n_resamples=200).set_index("method")
    assert summary.loc["human", "n_seeds"] == 1 and summary.loc["human", "n_images"] == 3
    assert summary.loc["human", "dice_mean"] == pytest.approx(human["dice"].mean())
    assert summary.loc["human", "dice_ci_low"] <= summary.loc["human", "dice_mean"]
    cmp = write_comparisons([human_csv, model_csv], "human", tmp_path / "cmp.csv")
    (row,) = cmp.to_dict("records")
    assert (row["method"], row["reference"], row["reference_train_set"]) == ("m", "human", "-")
    assert row["n"] == 3 and row["effect_size"] == 1.0
    assert row["median_diff"] == pytest.approx(0.01)
