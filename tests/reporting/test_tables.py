"""main_table formatting from a summary table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from samlora.reporting.tables import format_mean_std, main_table, save_table


@pytest.fixture
def summary() -> pd.DataFrame:
    return pd.DataFrame({
        "method": ["topolora_sam", "topolora_sam", "decoder_only"],
        "train_set": ["drive", "drive", "drive"],
        "test_set": ["drive", "chase_db1", "drive"],
        "dice_mean": [0.81234, 0.65, 0.7],
        "dice_std": [0.0042, 0.0199, float("nan")],
        "iou_mean": [0.68, 0.48, 0.54],
        "iou_std": [0.01, 0.02, float("nan")],
        "cldice_mean": [0.8, 0.6, float("nan")],
        "cldice_std": [0.0, 0.1, float("nan")],
        "auc_mean": [0.97, 0.9, 0.95],
        "auc_std": [0.001, 0.01, float("nan")],
        "n_seeds": [3, 3, 1],
        "n_images": [20, 8, 20],
    })


def test_rows_columns_and_cells(summary: pd.DataFrame) -> None:
    table = main_table(summary)
    assert list(table.columns) == ["Dice", "IoU", "AUC", "clDice"]
    assert table.index.names == ["Method", "Train set", "Test set"]
    assert table.loc[("topolora_sam", "drive", "drive"), "Dice"] == "0.812 ± 0.004"
    assert table.loc[("topolora_sam", "drive", "chase_db1"), "Dice"] == "0.650 ± 0.020"
    assert table.loc[("decoder_only", "drive", "drive"), "Dice"] == "0.700"  # one seed
    assert table.loc[("decoder_only", "drive", "drive"), "clDice"] == "–"
    assert list(table.index.get_level_values("Test set")) == ["drive", "chase_db1", "drive"]
    assert main_table(summary, decimals=2).iloc[0, 0] == "0.81 ± 0.00"


def test_only_present_metrics_and_errors(summary: pd.DataFrame, tmp_path) -> None:
    table = main_table(summary[["method", "train_set", "test_set", "auc_mean", "dice_mean"]])
    assert list(table.columns) == ["Dice", "AUC"] and table.iloc[0, 0] == "0.812"
    with pytest.raises(ValueError, match="test_set"):
        main_table(summary.drop(columns="test_set"))
    with pytest.raises(ValueError, match="none of the metrics"):
        main_table(summary[["method", "train_set", "test_set"]])
    path = save_table(table, tmp_path / "tables/main.csv")
    assert "0.812" in path.read_text()


def test_format_mean_std() -> None:
    assert format_mean_std(0.5, 0.25) == "0.500 ± 0.250"
    assert format_mean_std(float("nan"), 0.1) == "–"
    assert format_mean_std(0.5, math.nan, decimals=1) == "0.5"


def _moded(summary: pd.DataFrame) -> pd.DataFrame:
    """The fixture in two evaluation modes: ours, and a paper's with other values and F1."""
    ours = summary.assign(mode="native_fov")
    theirs = summary.assign(mode="sam2lora_ref", dice_mean=summary["dice_mean"] - 0.1,
                            f1_mean=summary["dice_mean"] - 0.1, f1_std=float("nan"),
                            cldice_mean=float("nan"))
    return pd.concat([ours, theirs], ignore_index=True)


def test_main_table_shows_one_evaluation_mode(summary: pd.DataFrame) -> None:
    both = _moded(summary)
    ours = main_table(both)
    assert len(ours) == 3 and "F1" not in ours.columns  # ours: no F1 value there
    assert ours.loc[("topolora_sam", "drive", "drive"), "Dice"] == "0.812 ± 0.004"
    theirs = main_table(both, mode="sam2lora_ref")
    assert theirs.loc[("topolora_sam", "drive", "drive"), "F1"] == "0.712"
    assert "clDice" not in theirs.columns
    every = main_table(both, mode=None)
    assert "Mode" in every.index.names and len(every) == 6


def test_mode_table_is_the_difference_the_mode_makes(summary: pd.DataFrame) -> None:
    from samlora.reporting.tables import mode_table

    table = mode_table(_moded(summary), test_set="chase_db1")
    assert table.attrs["run"] == "topolora_sam/drive/chase_db1"
    assert list(table.columns) == ["native_fov", "sam2lora_ref", "Δ sam2lora_ref"]
    assert table.loc["Dice", "native_fov"] == pytest.approx(0.65)
    assert table.loc["Dice", "Δ sam2lora_ref"] == pytest.approx(-0.1)
    assert table.loc["IoU", "Δ sam2lora_ref"] == pytest.approx(0.0)
    assert math.isnan(table.loc["clDice", "sam2lora_ref"])
    with pytest.raises(ValueError, match="no summary row"):
        mode_table(_moded(summary), method="nope")
    with pytest.raises(ValueError, match="no 'mode' column"):
        mode_table(summary)
