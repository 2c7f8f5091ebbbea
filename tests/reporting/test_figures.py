"""Overlay and per-image figures on a real DRIVE image and a synthetic prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from samlora.evaluation.aggregate import read_per_image
from samlora.reporting.figures import (find_example_run, load_example, overlay_figure,
                                       overlay_rgb, per_image_figure, save_figure)


def test_overlay_figure_has_three_panels(results: dict[str, Path], tmp_path: Path) -> None:
    ex = load_example(results["processed_root"], results["run"])
    assert ex.case == "drive_01" and ex.test_set == "drive" and ex.image.dtype == np.uint8
    assert ex.image.shape == (*ex.gt.shape, 3) == (584, 565, 3)
    assert ex.run == "topolora_sam, trained on drive, seed 0"
    fig = overlay_figure(ex.image, ex.gt, ex.prob, ex.fov, 0.5, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert "Dice" in fig.axes[2].get_title()
    out = save_figure(fig, tmp_path / "figs/overlay.png", dpi=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_example(results["processed_root"], results["run"], "drive_03").case == "drive_03"
    with pytest.raises(KeyError, match="drive_21"):
        load_example(results["processed_root"], results["run"], "drive_21")  # a training case


def test_overlay_colours_only_inside_fov() -> None:
    image = np.full((4, 4, 3), 128, np.uint8)
    gt = np.zeros((4, 4), bool)
    pred = np.zeros((4, 4), bool)
    gt[0, 0] = pred[0, 0] = True  # TP
    pred[0, 1] = True  # FP
    gt[0, 2] = True  # FN
    pred[3, 3] = True  # FP outside the FOV
    fov = np.ones((4, 4), bool)
    fov[3, 3] = False
    rgb = overlay_rgb(image, gt, pred, fov, alpha=1.0)
    from samlora.reporting.style import OVERLAY_COLOURS

    for px, name in (((0, 0), "tp"), ((0, 1), "fp"), ((0, 2), "fn")):
        assert np.allclose(rgb[px], OVERLAY_COLOURS[name]), name
    assert np.allclose(rgb[3, 3], 128 / 255) and np.allclose(rgb[1, 1], 128 / 255)
    tinted = np.zeros((4, 4, 3), np.uint8)
    tinted[..., 0] = 200  # a red image is shown in grey: its luminance, 0.299 * 200
    assert np.allclose(overlay_rgb(tinted, gt, pred, fov)[1, 1], 0.299 * 200 / 255)
    with pytest.raises(ValueError, match="shapes"):
        overlay_figure(image, gt, np.zeros((3, 3)), None, 0.5)


def test_per_image_figure_and_run_discovery(results: dict[str, Path]) -> None:
    per_image = read_per_image(str(results["root"] / "**/metrics_per_image.csv"))
    fig = per_image_figure(per_image, "dice")
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "Dice per image"
    assert find_example_run(results["root"]) == results["run"]
    with pytest.raises(KeyError):
        per_image_figure(pd.DataFrame({"method": [], "test_set": []}), "dice")


def test_example_skips_test_cases_without_a_label(results: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """The current DRIVE release has unlabelled test cases: the figure shows a labelled one."""
    import shutil

    processed = tmp_path / "processed"
    shutil.copytree(results["processed_root"] / "drive", processed / "drive")
    index = pd.read_csv(processed / "drive/index.csv", dtype=str, keep_default_na=False)
    index.loc[index["case"] == "drive_01", "mask"] = ""
    index.to_csv(processed / "drive/index.csv", index=False)
    assert load_example(processed, results["run"]).case == "drive_02"
    with pytest.raises(ValueError, match="drive_01 .* no reference label"):
        load_example(processed, results["run"], "drive_01")
