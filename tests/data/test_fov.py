"""Computed FOV masks against DRIVE's official ones, and on synthetic input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samlora.data.fov import compute_fov, largest_component
from samlora.data.io import read_image, read_mask

from .conftest import FOV_CFG


def test_computed_fov_matches_official_on_drive(prepared: dict[str, Path],
                                                indexes: dict[str, pd.DataFrame]) -> None:
    folder, ious = prepared["drive"], []
    for _, row in indexes["drive"].iterrows():
        official = read_mask(folder / row["fov"])
        computed = compute_fov(read_image(folder / row["image"]), **FOV_CFG)
        ious.append((official & computed).sum() / (official | computed).sum())
    assert min(ious) > 0.9


def test_synthetic_disk_with_hole_and_speck() -> None:
    yy, xx = np.mgrid[:200, :220]
    disk = (yy - 100) ** 2 + (xx - 110) ** 2 < 80**2
    image = np.zeros((200, 220, 3), np.uint8)
    image[disk] = (150, 60, 20)
    image[95:105, 105:115] = 0  # dark lesion inside: filled
    image[5:8, 5:8, 0] = 200  # speck outside: removed
    fov = compute_fov(image, red_threshold=0.1, radius=2)
    assert fov.dtype == bool and fov.shape == (200, 220)
    assert fov[100, 110] and not fov[6, 6]
    assert abs(int(fov.sum()) - int(disk.sum())) < 0.02 * disk.sum()


def test_largest_component_and_bad_args() -> None:
    m = np.zeros((10, 10), bool)
    m[0:2, 0:2] = True
    m[5:9, 5:9] = True
    assert largest_component(m).sum() == 16
    with pytest.raises(ValueError, match="red_threshold"):
        compute_fov(np.zeros((4, 4, 3), np.uint8), 1.5, 1)
    with pytest.raises(ValueError, match="RGB"):
        compute_fov(np.zeros((4, 4), np.uint8), 0.1, 1)
