"""SL-SSDD as released: the pinned masks archive (``SL-SSDD/{train,test}/<id>.png``) served
from 127.0.0.1, SSDD's images placed beside it as ``JPEGImages_{train,test}/``, the test
set by id (last digit 1 or 9), and the earlier ``images/`` + ``masks/`` placement.

The archive is built in tmp_path in the released layout (folder entries, 8-bit grey PNGs,
0 land / 255 sea) for a subset of the ids; the SAR images are synthetic grey JPEGs.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samlora.data.download import fetch_spec
from samlora.data.errors import MissingFilesError
from samlora.data.io import read_image_any, read_mask
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import Archive, get_dataset
from samlora.data.split_files import load_split

from .conftest import FOV_CFG
from .download_helpers import serving, sha

URL = "https://github.com/Han-Ke/SL-SSDD/raw/main/SL-SSDD.zip"
SHA = "da66b1807ea91a1f593cd62d4987f9d2ce4b410ede8ea97e231ad6f5f9455989"
IDS = [f"{i:06d}" for i in range(1, 13)]  # test: 000001, 000009, 000011
SUBSET = PreparePolicy(allow_subset=True)


def _part(n: str) -> str:
    return "test" if n[-1] in "19" else "train"


def _land(k: int) -> np.ndarray:
    """Land (True) left of a coastline that moves with ``k``; id 000012 is all land."""
    land = np.zeros((30, 44), bool)
    land[:, : 10 + k] = True
    return np.ones_like(land) if k == 11 else land


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _masks_zip() -> bytes:
    """SL-SSDD.zip's layout: folder entries, then one grey PNG per id in train/ or test/."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder in ("SL-SSDD/", "SL-SSDD/test/", "SL-SSDD/train/"):
            zf.writestr(folder, b"")
        for k, n in enumerate(IDS):
            sea = np.where(_land(k), 0, 255).astype(np.uint8)
            zf.writestr(f"SL-SSDD/{_part(n)}/{n}.png", _png(sea))
    return buf.getvalue()


def _ssdd_images(folder: Path, names: dict[str, str] | None = None) -> None:
    """SAR-like grey JPEGs, ``folder/<JPEGImages_part>/<id>.jpg`` (or a folder per ``names``)."""
    for k, n in enumerate(IDS):
        rng = np.random.default_rng(k)
        grey = (np.where(_land(k), 150, 40) + rng.integers(0, 20, (30, 44))).astype(np.uint8)
        sub = (names or {}).get(_part(n), f"JPEGImages_{_part(n)}")
        path = folder / sub / f"{n}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(path, quality=95)


def _check(out: Path, index) -> None:
    assert sorted(index.loc[index["split"] == "test", "case"]) == \
        ["sl_ssdd_000001", "sl_ssdd_000009", "sl_ssdd_000011"]
    assert len(index) == len(IDS)
    for _, row in index.iterrows():
        k = IDS.index(row["case"].removeprefix("sl_ssdd_"))
        np.testing.assert_array_equal(read_mask(out / row["mask"]), ~_land(k))
        assert read_mask(out / row["fov"]).all()
        assert read_image_any(out / row["image"]).shape == (30, 44, 3)


def test_the_masks_archive_is_pinned() -> None:
    spec = get_dataset("sl_ssdd")
    assert spec.source.archives == (Archive(URL, SHA),)
    assert spec.source.archives[0].filename == "SL-SSDD.zip"
    assert "https://github.com/TianwenZhang0825/Official-SSDD" in spec.source.placement


def test_committed_split_tests_on_ids_ending_in_1_or_9() -> None:
    split = load_split("sl_ssdd")
    assert split.counts() == {"train": 928, "test": 232}
    ids = {c.removeprefix("sl_ssdd_") for c in split.cases}
    assert ids == {f"{i:06d}" for i in range(1, 1161)}
    assert {c.removeprefix("sl_ssdd_") for c in split.splits["test"]} == \
        {n for n in ids if n[-1] in "19"}


def test_download_then_place_the_ssdd_images(tmp_path: Path) -> None:
    data, raw = _masks_zip(), tmp_path / "raw"
    base = get_dataset("sl_ssdd")
    with serving() as srv:
        srv.files["/Han-Ke/SL-SSDD/raw/main/SL-SSDD.zip"] = data
        url = f"http://127.0.0.1:{srv.server_address[1]}/Han-Ke/SL-SSDD/raw/main/SL-SSDD.zip"
        spec = dataclasses.replace(base, source=dataclasses.replace(
            base.source, archives=(Archive(url, sha(data)),)))
        extracted = raw / "sl_ssdd" / "extracted"
        with pytest.raises(MissingFilesError) as info:  # masks only: the images are missing
            fetch_spec(spec, raw, None, tmp_path / "lock.json", allow_subset=True)
        assert str(extracted / "JPEGImages_train" / "000002.jpg") in str(info.value)
        assert (extracted / "SL-SSDD" / "test" / "000009.png").is_file()
        _ssdd_images(extracted)  # where the message says
        root = fetch_spec(spec, raw, None, tmp_path / "lock.json", allow_subset=True)
    assert root == extracted
    recs = {r.case: r for r in spec.records(root)}
    assert recs["sl_ssdd_000011"].image == root / "JPEGImages_test" / "000011.jpg"
    assert recs["sl_ssdd_000011"].mask == root / "SL-SSDD" / "test" / "000011.png"
    assert recs["sl_ssdd_000002"].mask == root / "SL-SSDD" / "train" / "000002.png"
    index = prepare_dataset("sl_ssdd", root, tmp_path / "out", FOV_CFG, policy=SUBSET)
    _check(tmp_path / "out", index)  # an all-land mask is no error: the sea is not always there


def test_images_beside_train_and_test_folders(tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(_masks_zip())) as zf:
        zf.extractall(tmp_path)
    root = tmp_path / "SL-SSDD"  # the archive's folder, SSDD's folders copied into it
    _ssdd_images(root)
    index = prepare_dataset("sl_ssdd", root, tmp_path / "out", FOV_CFG, policy=SUBSET)
    _check(tmp_path / "out", index)


def test_earlier_images_and_masks_placement_still_read(tmp_path: Path) -> None:
    root = tmp_path / "SL-SSDD"
    _ssdd_images(root, {"train": "images", "test": "images"})
    for k, n in enumerate(IDS):
        (root / "masks").mkdir(exist_ok=True)
        (root / "masks" / f"{n}.png").write_bytes(_png(np.where(_land(k), 0, 255)
                                                       .astype(np.uint8)))
    index = prepare_dataset("sl_ssdd", root, tmp_path / "out", FOV_CFG, policy=SUBSET)
    _check(tmp_path / "out", index)
