"""prepare_dataset end to end on DRIVE and CHASE_DB1 from the mirror, and its failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samlora.data.download import fetch_dataset
from samlora.data.errors import ImageReadError, MissingFilesError, SizeMismatchError
from samlora.data.io import read_image_any, read_mask
from samlora.data.prepare import COLUMNS, prepare_dataset
from samlora.data.registry import get_dataset

from .conftest import FOV_CFG, snapshot

EXPECTED = {"drive": (20, 20, (584, 565), "official"), "chase_db1": (20, 8, (960, 999), "computed")}


@pytest.mark.parametrize("name", ["drive", "chase_db1"])
def test_index_counts_sizes_and_paths(prepared: dict[str, Path],
                                      indexes: dict[str, pd.DataFrame], name: str) -> None:
    n_train, n_test, hw, fov_source = EXPECTED[name]
    index, folder = indexes[name], prepared[name]
    assert list(index.columns) == [*COLUMNS, "native_mask", "native_mask2", "native_fov",
                                   "native_height", "native_width"]
    assert (index[["native_mask", "native_mask2", "native_fov"]] == "").all().all()  # native
    assert (index["native_height"] == index["height"]).all()
    assert (index["split"] == "train").sum() == n_train
    assert (index["split"] == "test").sum() == n_test
    assert set(index["fov_source"]) == {fov_source}
    assert set(zip(index["height"].astype(int), index["width"].astype(int), strict=True)) == {hw}
    for _, row in index.iterrows():
        image = read_image_any(folder / row["image"])
        assert image.shape == (*hw, 3) and image.dtype == np.uint8
        for col in ("mask", "fov") + (("mask2",) if row["mask2"] else ()):
            arr = read_image_any(folder / row[col])
            assert arr.shape == hw and arr.dtype == np.uint8
            assert set(np.unique(arr)) <= {0, 255}
    info = json.loads((folder / "dataset.json").read_text())
    assert info["counts"] == {"train": n_train, "test": n_test}
    assert info["id"] == name and info["task"] == "vessel" and info["split_convention"]


def test_images_are_lossless(mirror: Path, prepared: dict[str, Path]) -> None:
    np.testing.assert_array_equal(
        read_image_any(prepared["chase_db1"] / "images/chase_db1_03R.png"),
        np.asarray(Image.open(mirror / "CHASE_DB1/Image_03R.jpg").convert("RGB")))


@pytest.mark.parametrize("name", ["drive", "chase_db1"])
def test_fov_coverage_plausible(prepared: dict[str, Path], indexes: dict[str, pd.DataFrame],
                                name: str) -> None:
    cover = [read_mask(prepared[name] / p).mean() for p in indexes[name]["fov"]]
    assert 0.6 < min(cover) and max(cover) < 0.8


def test_drive_second_observer(prepared: dict[str, Path], indexes: dict[str, pd.DataFrame]) -> None:
    index = indexes["drive"]
    assert (index["mask2"] != "").sum() == 20
    assert (index.loc[index["split"] == "train", "mask2"] == "").all()
    fractions = []
    for _, row in index[index["mask2"] != ""].iterrows():
        fov = read_mask(prepared["drive"] / row["fov"])
        mask2 = read_mask(prepared["drive"] / row["mask2"])
        fractions.append(mask2[fov].mean())
    assert 0.06 < min(fractions) and max(fractions) < 0.2
    assert 0.08 < float(np.mean(fractions)) < 0.15


def test_chase_has_both_observers(indexes: dict[str, pd.DataFrame]) -> None:
    assert (indexes["chase_db1"]["mask2"] != "").all()


@pytest.mark.parametrize("name", ["drive", "chase_db1"])
def test_second_run_changes_nothing(mirror: Path, prepared: dict[str, Path], name: str) -> None:
    folder = prepared[name]
    before = snapshot(folder)
    again = prepare_dataset(name, mirror / get_dataset(name).folder, folder, FOV_CFG)
    assert snapshot(folder) == before
    assert len(again) == sum(EXPECTED[name][:2])
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name]


def _no_outputs(out: Path) -> None:
    assert not (out / "index.csv").exists() and not (out / "dataset.json").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_missing_mirror_file_named(chase_copy: Path, tmp_path: Path) -> None:
    (chase_copy / "Image_05R_2ndHO.png").unlink()
    with pytest.raises(MissingFilesError, match="Image_05R_2ndHO.png"):
        fetch_dataset("chase_db1", tmp_path / "raw", chase_copy.parent, tmp_path / "lock.json")
    assert not (tmp_path / "raw/chase_db1/source.json").exists()
    with pytest.raises(MissingFilesError, match="Image_05R_2ndHO.png"):
        prepare_dataset("chase_db1", chase_copy, tmp_path / "out", FOV_CFG)
    _no_outputs(tmp_path / "out")


def test_corrupt_image_named_and_index_not_written(chase_copy: Path, tmp_path: Path) -> None:
    bad = chase_copy / "Image_01L.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match="Image_01L.jpg"):
        prepare_dataset("chase_db1", chase_copy, tmp_path / "out", FOV_CFG)
    _no_outputs(tmp_path / "out")


def test_failed_rerun_invalidates_previous_index(drive_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_dataset("drive", drive_copy, out, FOV_CFG)
    # A changed label makes the next run rewrite files; then it fails on a truncated label.
    first = drive_copy / "training/1st_manual/21_manual1.gif"
    mask = np.asarray(Image.open(first).convert("L"))
    Image.fromarray(255 - mask).save(first)
    last = drive_copy / "test/1st_manual/20_manual1.gif"  # header reads, pixels do not
    last.write_bytes(last.read_bytes()[:3000])
    with pytest.raises(ImageReadError, match="20_manual1.gif"):
        prepare_dataset("drive", drive_copy, out, FOV_CFG, workers=1)
    _no_outputs(out)  # the old index.csv no longer claims a complete folder


def test_mask_size_mismatch_names_both_files(chase_copy: Path, tmp_path: Path) -> None:
    path = chase_copy / "Image_07L_1stHO.png"
    with Image.open(path) as im:
        im.crop((0, 0, 998, 960)).save(path)
    with pytest.raises(SizeMismatchError) as info:
        prepare_dataset("chase_db1", chase_copy, tmp_path / "out", FOV_CFG)
    assert "Image_07L_1stHO.png" in str(info.value) and "Image_07L.jpg" in str(info.value)
    assert not (tmp_path / "out" / "images").exists()  # checked before anything is written
    _no_outputs(tmp_path / "out")


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="known datasets"):
        prepare_dataset("drvie", tmp_path, tmp_path / "out", FOV_CFG)
    with pytest.raises(KeyError, match="drvie"):
        fetch_dataset("drvie", tmp_path / "raw", None, tmp_path / "lock.json")
    assert not (tmp_path / "out").exists() and not (tmp_path / "raw").exists()
