"""Readers on the real file formats (tif, gif, palette gif, jpg, 1-bit png, ppm, ppm.gz)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samlora.data.errors import ImageReadError
from samlora.data.io import (
    read_image,
    read_image_any,
    read_mask,
    write_png_if_changed,
)


def test_read_image_tif_and_jpg(mirror: Path) -> None:
    tif = read_image(mirror / "DRIVE/training/images/21_training.tif")
    jpg = read_image(mirror / "CHASE_DB1/Image_01L.jpg")
    assert tif.shape == (584, 565, 3) and tif.dtype == np.uint8
    assert jpg.shape == (960, 999, 3) and jpg.dtype == np.uint8


def test_read_mask_grey_gif(mirror: Path) -> None:
    m = read_mask(mirror / "DRIVE/training/1st_manual/21_manual1.gif")
    assert m.dtype == bool and m.shape == (584, 565)
    assert 0.05 < m.mean() < 0.2


def test_read_mask_palette_gif_uses_palette_not_nonzero(mirror: Path) -> None:
    path = mirror / "DRIVE/test/2nd_manual/01_manual2.gif"
    assert read_image_any(path).max() == 1  # palette indices 0/1
    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"))
    assert set(np.unique(grey)) == {3, 253}  # '> 0' would mark every pixel as vessel
    m = read_mask(path)
    assert 0.05 < m.mean() < 0.2
    np.testing.assert_array_equal(m, grey >= 128)


def test_read_mask_one_bit_png(mirror: Path) -> None:
    path = mirror / "CHASE_DB1/Image_01L_1stHO.png"
    with Image.open(path) as im:
        assert im.mode == "1"
    m = read_mask(path)
    assert m.shape == (960, 999) and 0.03 < m.mean() < 0.15


def test_read_mask_zero_one_grey(tmp_path: Path) -> None:
    arr = np.zeros((8, 9), np.uint8)
    arr[2:4, 3:6] = 1
    Image.fromarray(arr).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), arr == 1)


def test_ppm_and_gzipped_ppm(mirror: Path, tmp_path: Path) -> None:
    src = mirror / "STARE/stare-images/im0001.ppm"
    gz = tmp_path / "im0001.ppm.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    a, b = read_image(src), read_image(gz)
    assert a.shape == (605, 700, 3)
    np.testing.assert_array_equal(a, b)
    label = read_mask(mirror / "STARE/labels-ah/im0001.ah.ppm")
    assert label.shape == (605, 700) and 0.03 < label.mean() < 0.2


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL warns on the truncated TIFF's EXIF
@pytest.mark.parametrize("name", ["CHASE_DB1/Image_01L.jpg", "CHASE_DB1/Image_01L_1stHO.png",
                                  "DRIVE/training/images/21_training.tif",
                                  "DRIVE/training/1st_manual/21_manual1.gif"])
def test_truncated_file_names_the_file(mirror: Path, tmp_path: Path, name: str) -> None:
    data = (mirror / name).read_bytes()
    bad = tmp_path / Path(name).name
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=str(bad)):
        read_mask(bad) if "manual" in name or "HO" in name else read_image(bad)


def test_not_an_image_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.png"
    bad.write_text("not a png")
    with pytest.raises(ImageReadError, match="x.png"):
        read_image(bad)
    with pytest.raises(FileNotFoundError, match="nope.tif"):
        read_image(tmp_path / "nope.tif")


def test_write_png_if_changed_keeps_mtime(tmp_path: Path) -> None:
    arr = np.arange(60, dtype=np.uint8).reshape(6, 10)
    path = tmp_path / "a.png"
    assert write_png_if_changed(path, arr)
    before = path.stat().st_mtime_ns
    assert not write_png_if_changed(path, arr)
    assert path.stat().st_mtime_ns == before
    assert write_png_if_changed(path, arr[::-1].copy())
    np.testing.assert_array_equal(read_image_any(path), arr[::-1])
