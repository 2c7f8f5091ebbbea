"""Fixtures: a small prepared DRIVE folder (real masks) built in tmp from the data mirror."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

#: DRIVE test cases copied (as PNG) into the prepared fixture folder.
TEST_CASES = ("01", "02", "03")
TRAIN_CASES = ("21",)


def drive_gif(path: Path) -> np.ndarray:
    """A DRIVE label or FOV GIF as H×W bool (palette GIFs go through grey, threshold 128)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) >= 128


def _save_mask(mask: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def _case_row(drive: Path, out: Path, num: str, split: str) -> dict[str, object]:
    sub = "test" if split == "test" else "training"
    case = f"drive_{num}"
    with Image.open(drive / sub / "images" / f"{num}_{sub}.tif") as im:
        rgb = im.convert("RGB")
        (out / "images").mkdir(parents=True, exist_ok=True)
        rgb.save(out / "images" / f"{case}.png")
    _save_mask(drive_gif(drive / sub / "1st_manual" / f"{num}_manual1.gif"),
               out / "masks" / f"{case}.png")
    _save_mask(drive_gif(drive / sub / "mask" / f"{num}_{sub}_mask.gif"),
               out / "fov" / f"{case}.png")
    mask2 = ""
    if split == "test":
        mask2 = f"masks2/{case}.png"
        _save_mask(drive_gif(drive / "test" / "2nd_manual" / f"{num}_manual2.gif"), out / mask2)
    return {"case": case, "split": split, "image": f"images/{case}.png",
            "mask": f"masks/{case}.png", "mask2": mask2, "fov": f"fov/{case}.png",
            "fov_source": "official", "height": rgb.height, "width": rgb.width}


def build_drive_processed(mirror: Path, out: Path,
                          train_cases: tuple[str, ...] = TRAIN_CASES) -> Path:
    """Write ``out`` in the prepared-dataset layout (index.csv + PNGs) from real DRIVE files."""
    drive = mirror / "DRIVE"
    rows = [_case_row(drive, out, n, "test") for n in TEST_CASES]
    rows += [_case_row(drive, out, n, "train") for n in train_cases]
    pd.DataFrame(rows).to_csv(out / "index.csv", index=False)
    return out


@pytest.fixture(scope="session")
def drive_processed(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/processed/drive``: 3 DRIVE test cases + 1 training case, masks as 0/255 PNG."""
    return build_drive_processed(mirror, tmp_path_factory.mktemp("processed") / "drive")


#: Training cases of :func:`drive_processed_val`: with train.val_fraction 0.2 the loop
#: carves one of the three out for validation.
VAL_TRAIN_CASES = ("21", "22", "23")


@pytest.fixture(scope="session")
def drive_processed_val(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``drive_processed`` with 3 training cases, so that training also validates."""
    return build_drive_processed(mirror, tmp_path_factory.mktemp("processed_val") / "drive",
                                 VAL_TRAIN_CASES)
