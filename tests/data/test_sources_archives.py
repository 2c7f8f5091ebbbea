"""HRF, FIVES and SL-SSDD from small archives built in their official layouts.

The images are synthetic (a bright disk with a drawn vessel on black; a SAR-like grey
patch with a straight coastline), small, and saved in each dataset's own formats, so the
reader, the split file, the download / placement and extraction, and prepare are all
exercised without network.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import draw

from samlora.data.download import fetch_dataset, fetch_spec
from samlora.data.io import read_image_any, read_mask
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import Archive, get_dataset

from .conftest import FOV_CFG

H, W = 40, 56  # synthetic fundus size (h, w)


def _fundus(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB image, vessel mask, FOV mask): a reddish disk with one dark line across it."""
    rng = np.random.default_rng(seed)
    fov = np.zeros((H, W), bool)
    fov[draw.disk((H // 2, W // 2), 18, shape=(H, W))] = True
    vessel = np.zeros((H, W), bool)
    rr, cc = draw.line(4, 10 + seed % 20, H - 5, 30 + seed % 15)
    vessel[rr, cc] = True
    vessel &= fov
    img = np.zeros((H, W, 3), np.uint8)
    img[fov] = (200, 90, 40)
    img[vessel] = (110, 40, 20)
    img = np.clip(img.astype(int) + rng.integers(-3, 4, img.shape) * fov[..., None], 0, 255)
    return img.astype(np.uint8), vessel, fov


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _index(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "index.csv", dtype=str, keep_default_na=False)


# --- HRF: all.zip from a file:// URL -------------------------------------------------------


@pytest.fixture(scope="module")
def hrf_zip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """all.zip in HRF's layout (45 cases; DR images as .JPG) and the vessel mask per case."""
    files, vessels = {}, {}
    for k, (cat, n) in enumerate((c, n) for c in ("h", "dr", "g") for n in range(1, 16)):
        img, vessel, fov = _fundus(k)
        stem = f"{n:02d}_{cat}"
        ext = "JPG" if cat == "dr" else "jpg"
        files[f"images/{stem}.{ext}"] = _encode(img, "JPEG")
        files[f"manual1/{stem}.tif"] = _encode(vessel.astype(np.uint8) * 255, "TIFF")
        files[f"mask/{stem}_mask.tif"] = _encode(np.repeat(fov[..., None], 3, 2).astype(
            np.uint8) * 255, "TIFF")  # the official FOV masks are RGB
        vessels[f"hrf_{stem}"] = vessel
    return _zip(tmp_path_factory.mktemp("hrf") / "all.zip", files), vessels


def test_hrf_download_extract_prepare(hrf_zip: tuple[Path, dict[str, np.ndarray]],
                                      tmp_path: Path) -> None:
    archive, vessels = hrf_zip
    spec = get_dataset("hrf")
    spec = dataclasses.replace(spec, source=dataclasses.replace(
        spec.source, archives=(Archive(archive.as_uri()),)))
    lock = tmp_path / "checksums.lock.json"
    root = fetch_spec(spec, tmp_path / "raw", None, lock)
    assert list(json.loads(lock.read_text())) == [archive.as_uri()]  # hash pinned
    source = json.loads((tmp_path / "raw/hrf/source.json").read_text())
    assert source["origin"] == "download" and source["cases"] == 45 and source["subset"] is False
    index = prepare_dataset("hrf", root, tmp_path / "out", FOV_CFG)
    assert index["split"].value_counts().to_dict() == {"test": 30, "train": 15}
    train = sorted(index.loc[index["split"] == "train", "case"])
    assert train == sorted(f"hrf_{n:02d}_{c}" for c in ("h", "dr", "g") for n in range(1, 6))
    assert set(index["fov_source"]) == {"official"}
    for _, row in index.iterrows():
        mask = read_image_any(tmp_path / "out" / row["mask"])
        assert mask.shape == (H, W) and set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask > 0, vessels[row["case"]])
        assert abs(read_mask(tmp_path / "out" / row["fov"]).mean() - np.pi * 18**2 / (H * W)) \
            < 0.05


# --- FIVES: its archive from a file:// URL (the RAR itself: test_fives_grape_refuge2.py) ----


def test_fives_archive_prepare(tmp_path: Path) -> None:
    split = get_dataset("fives").split
    files = {}
    for k, case in enumerate(split.cases):
        folder, name = case.removeprefix("fives_").split("_", 1)
        img, vessel, _ = _fundus(k % 50)
        files[f"FIVES/{folder}/Original/{name}.png"] = _encode(img, "PNG")
        files[f"FIVES/{folder}/Ground truth/{name}.png"] = _encode(
            vessel.astype(np.uint8) * 255, "PNG")
    raw = tmp_path / "raw"
    served = _zip(tmp_path / "served" / "FIVES.zip", files)
    spec = get_dataset("fives")
    spec = dataclasses.replace(spec, source=dataclasses.replace(
        spec.source, archives=(Archive(served.as_uri()),)))
    root = fetch_spec(spec, raw, None, tmp_path / "lock.json")
    assert root == raw / "fives/extracted/FIVES"
    index = prepare_dataset("fives", root, tmp_path / "out", FOV_CFG)
    assert index["split"].value_counts().to_dict() == {"train": 600, "test": 200}
    assert set(index["fov_source"]) == {"computed"}
    row = index.iloc[0]
    fov = read_mask(tmp_path / "out" / row["fov"])
    assert abs(fov.mean() - np.pi * 18**2 / (H * W)) < 0.05  # the computed disk
    assert set(np.unique(read_image_any(tmp_path / "out" / row["mask"]))) == {0, 255}


# --- SL-SSDD: SSDD images + SL-SSDD masks placed together (a subset) -----------------------


def test_sl_ssdd_placed_subset_sea_is_foreground(tmp_path: Path) -> None:
    ids = [f"{i:06d}" for i in range(1, 21)]  # 000001 and 000009 fall in SSDD's test set
    files, sea = {}, {}
    for k, n in enumerate(ids):
        rng = np.random.default_rng(k)
        land = np.zeros((30, 44), bool)
        land[:, : 10 + k] = True  # coastline moves with k
        sar = np.where(land, 150, 40) + rng.integers(0, 20, land.shape)
        files[f"SL-SSDD/images/{n}.jpg"] = _encode(sar.astype(np.uint8), "JPEG")
        files[f"SL-SSDD/masks/{n}.png"] = _encode(np.where(land, 0, 255).astype(np.uint8),
                                                  "PNG")
        sea[f"sl_ssdd_{n}"] = ~land
    raw = tmp_path / "raw"
    _zip(raw / "sl_ssdd" / "placed.zip", files)
    root = fetch_dataset("sl_ssdd", raw, None, tmp_path / "lock.json", allow_subset=True)
    index = prepare_dataset("sl_ssdd", root, tmp_path / "out", FOV_CFG,
                            policy=PreparePolicy(allow_subset=True))
    assert len(index) == 20
    assert sorted(index.loc[index["split"] == "test", "case"]) == \
        ["sl_ssdd_000001", "sl_ssdd_000009", "sl_ssdd_000011", "sl_ssdd_000019"]
    for _, row in index.iterrows():
        np.testing.assert_array_equal(read_mask(tmp_path / "out" / row["mask"]), sea[row["case"]])
        assert read_mask(tmp_path / "out" / row["fov"]).all()
        assert read_image_any(tmp_path / "out" / row["image"]).shape == (30, 44, 3)
    info = json.loads((tmp_path / "out/dataset.json").read_text())
    assert info["labels"] == {"background": 0, "sea": 1}
    assert info["subset"]["present"] == 20 and info["subset"]["of"] == 1160
