"""STARE and Kvasir-SEG (100-image subset) prepared end to end from the mirror."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samlora.data.download import fetch_dataset
from samlora.data.io import read_image_any, read_mask
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import get_dataset

from .conftest import FOV_CFG, snapshot

SUBSET = PreparePolicy(allow_subset=True)


@pytest.fixture(scope="module")
def prepared_other(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{dataset: processed folder}`` for stare and kvasir_seg, prepared once."""
    base = tmp_path_factory.mktemp("other")
    out = {}
    for name in ("stare", "kvasir_seg"):
        root = fetch_dataset(name, base / "raw", mirror, base / "lock.json", allow_subset=True)
        prepare_dataset(name, root, base / "processed" / name, FOV_CFG, policy=SUBSET)
        out[name] = base / "processed" / name
    return out


def _index(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "index.csv", dtype=str, keep_default_na=False)


def test_stare_counts_sizes_values_and_fov(prepared_other: dict[str, Path]) -> None:
    folder = prepared_other["stare"]
    index = _index(folder)
    assert index["split"].value_counts().to_dict() == {"train": 10, "test": 10}
    assert index.loc[index["split"] == "train", "case"].iloc[-1] == "stare_0139"
    assert set(index["height"]) == {"605"} and set(index["width"]) == {"700"}
    assert set(index["fov_source"]) == {"computed"}
    assert (index["mask2"] != "").all()  # vk, the human baseline
    for _, row in index.iterrows():
        for col in ("mask", "mask2", "fov"):
            arr = read_image_any(folder / row[col])
            assert arr.shape == (605, 700) and set(np.unique(arr)) <= {0, 255}
        fov = read_mask(folder / row["fov"])
        assert 0.65 < fov.mean() < 0.95
        assert not fov[0, 0] and not fov[-1, -1]  # the dark corners lie outside
        vessels = read_mask(folder / row["mask"])
        assert 0.03 < vessels.mean() < 0.12  # thin structures, not a threshold artefact
    info = json.loads((folder / "dataset.json").read_text())
    assert info["counts"] == {"train": 10, "test": 10} and info["subset"] is False
    assert info["split_convention"].startswith("first10_last10")


def test_kvasir_subset_counts_sizes_values(mirror: Path, prepared_other: dict[str, Path]) -> None:
    folder = prepared_other["kvasir_seg"]
    index = _index(folder)
    split = get_dataset("kvasir_seg").split.assignment()
    assert len(index) == 100
    assert all(split[c] == s for c, s in zip(index["case"], index["split"], strict=True))
    assert set(index["fov_source"]) == {"whole_image"}
    bboxes = json.loads((mirror / "Kvasir-SEG/kavsir_bboxes.json").read_text())
    for _, row in index.head(20).iterrows():
        box = bboxes[row["case"].removeprefix("kvasir_seg_")]
        assert (int(row["height"]), int(row["width"])) == (box["height"], box["width"])
        mask = read_image_any(folder / row["mask"])
        assert set(np.unique(mask)) <= {0, 255}  # JPEG noise thresholded away
        assert read_mask(folder / row["fov"]).all()
        # the polyps lie inside their published bounding boxes (JPEG blur aside)
        inside = np.zeros(mask.shape, bool)
        for b in box["bbox"]:
            inside[max(0, b["ymin"] - 3):b["ymax"] + 4, max(0, b["xmin"] - 3):b["xmax"] + 4] = True
        assert (inside[mask > 0]).mean() > 0.99
    info = json.loads((folder / "dataset.json").read_text())
    assert info["subset"]["present"] == 100 and info["subset"]["of"] == 1000
    assert info["task"] == "polyp" and info["labels"] == {"background": 0, "polyp": 1}


def test_kvasir_jpeg_mask_threshold(mirror: Path, prepared_other: dict[str, Path]) -> None:
    """Prepared masks equal the raw JPEG's grey value >= 128 (never > 0)."""
    case = _index(prepared_other["kvasir_seg"])["case"].iloc[0]
    raw = np.asarray(Image.open(mirror / f"Kvasir-SEG/masks/{case[11:]}.jpg").convert("L"))
    assert ((raw > 0) & (raw < 128)).any()  # JPEG noise exists in the raw mask
    prepared = read_mask(prepared_other["kvasir_seg"] / f"masks/{case}.png")
    np.testing.assert_array_equal(prepared, raw >= 128)


@pytest.mark.parametrize("name", ["stare", "kvasir_seg"])
def test_second_run_changes_nothing(prepared_other: dict[str, Path], name: str) -> None:
    folder = prepared_other[name]
    root = Path(json.loads((folder / "dataset.json").read_text())["source"]["root"])
    before = snapshot(folder)
    prepare_dataset(name, root, folder, FOV_CFG, policy=SUBSET)
    assert snapshot(folder) == before


def test_stare_official_gzip_layout_reads_the_same(mirror: Path, tmp_path: Path,
                                                   prepared_other: dict[str, Path]) -> None:
    """The official tarballs hold .ppm.gz: a gzipped copy prepares to identical pixels."""
    root = tmp_path / "STARE"
    for sub in ("stare-images", "labels-ah", "labels-vk"):
        (root / sub).mkdir(parents=True)
        for p in sorted((mirror / "STARE" / sub).glob("*.ppm"))[:4]:
            (root / sub / (p.name + ".gz")).write_bytes(gzip.compress(p.read_bytes()))
        for p in sorted((mirror / "STARE" / sub).glob("*.ppm"))[4:]:
            shutil.copy(p, root / sub / p.name)  # mixed: both forms are read
    index = prepare_dataset("stare", root, tmp_path / "out", FOV_CFG)
    assert len(index) == 20
    for case in index["case"].head(4):
        for sub in ("images", "masks", "masks2", "fov"):
            np.testing.assert_array_equal(
                read_image_any(tmp_path / "out" / sub / f"{case}.png"),
                read_image_any(prepared_other["stare"] / sub / f"{case}.png"))
