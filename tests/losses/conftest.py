"""Fixtures for the loss tests: a real DRIVE vessel annotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def drive_vessels(mirror: Path) -> np.ndarray:
    """DRIVE training case 21's manual vessel annotation, 584×565 bool."""
    path = mirror / "DRIVE" / "training" / "1st_manual" / "21_manual1.gif"
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) >= 128
