"""NIfTI (nibabel) and .mat (scipy.io) readers, and .bmp through the image readers."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import scipy.io
from PIL import Image

from samlora.data.arrays import read_array, read_mat, read_nifti
from samlora.data.errors import ImageReadError
from samlora.data.io import read_image, read_image_any, read_mask


def _plane() -> np.ndarray:
    """A 6×9 label map: a 2×3 block of 1s."""
    arr = np.zeros((6, 9), np.uint8)
    arr[1:3, 4:7] = 1
    return arr


@pytest.mark.parametrize("name", ["label.nii", "label.nii.gz"])
def test_nifti_volume_written_here(tmp_path: Path, name: str) -> None:
    arr = _plane()
    nib.save(nib.Nifti1Image(arr[..., None], np.diag([0.5, 0.25, 2.0, 1.0])), tmp_path / name)
    data, meta = read_nifti(tmp_path / name)
    np.testing.assert_array_equal(data, arr)  # trailing singleton axis dropped
    assert meta["spacing"] == (0.5, 0.25)
    np.testing.assert_array_equal(read_mask(tmp_path / name), arr.astype(bool))
    assert read_image(tmp_path / name).shape == (6, 9, 3)


def test_nifti_3d_volume_keeps_its_axes(tmp_path: Path) -> None:
    vol = np.arange(2 * 3 * 5, dtype=np.int16).reshape(2, 3, 5)  # not colour
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    data, meta = read_array(tmp_path / "v.nii.gz")
    np.testing.assert_array_equal(data, vol)
    assert meta["spacing"] == (1.0, 1.0, 1.0)
    with pytest.raises(ImageReadError, match="3-D array"):
        read_image_any(tmp_path / "v.nii.gz")


def test_truncated_nifti_names_the_file(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((64, 64, 8), np.float32), np.eye(4)), tmp_path / "t.nii")
    data = (tmp_path / "t.nii").read_bytes()
    (tmp_path / "t.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="t.nii"):
        read_nifti(tmp_path / "t.nii")


def test_mat_single_variable_and_named(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "one.mat", {"mask": _plane()})
    data, meta = read_mat(tmp_path / "one.mat")
    np.testing.assert_array_equal(data, _plane())
    assert meta["variable"] == "mask" and meta["spacing"] == (1.0, 1.0)
    np.testing.assert_array_equal(read_mask(tmp_path / "one.mat"), _plane().astype(bool))
    scipy.io.savemat(tmp_path / "two.mat", {"disc": _plane(), "cup": _plane() * 2})
    with pytest.raises(ImageReadError, match=r"two.mat: expected one numeric variable.*cup"):
        read_mat(tmp_path / "two.mat")
    np.testing.assert_array_equal(read_mat(tmp_path / "two.mat", "cup")[0], _plane() * 2)
    with pytest.raises(ImageReadError, match="no numeric variable 'rim'"):
        read_mat(tmp_path / "two.mat", "rim")


def test_not_a_mat_file(tmp_path: Path) -> None:
    (tmp_path / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file but then nothing useful")
    with pytest.raises(ImageReadError, match="bad.mat"):
        read_mat(tmp_path / "bad.mat")


def test_bmp_image_and_mask(mirror: Path, tmp_path: Path) -> None:
    """A real DRIVE label converted to BMP reads back identically."""
    src = mirror / "DRIVE/training/1st_manual/21_manual1.gif"
    Image.open(src).convert("L").save(tmp_path / "m.bmp")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.bmp"), read_mask(src))
    Image.open(mirror / "CHASE_DB1/Image_01L.jpg").save(tmp_path / "i.bmp")
    assert read_image(tmp_path / "i.bmp").shape == (960, 999, 3)
