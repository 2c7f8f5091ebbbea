"""FIVES, GRAPE and REFUGE2 from archives in their real release layouts, end to end.

FIVES: one RAR5 archive served under figshare's bare file number by a local HTTP server;
GRAPE: separate RARs (``ROI images.rar`` and ``CFPs.rar`` without a top folder, sharing
file names; ``json.rar``) placed side by side; REFUGE2: ``REFUGE2.zip`` holding six inner
zips and macOS metadata, and the ``REFUGE2-Training`` folder. Images are real CHASE_DB1 and
Kvasir-SEG files from the data mirror (REFUGE2: the synthetic disc/cup builders).
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samlora.data.download import fetch_dataset, fetch_spec, read_lock
from samlora.data.errors import RegistrationRequiredError
from samlora.data.io import read_image_any, read_mask
from samlora.data.layout import scan_root
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import Archive, get_dataset
from samlora.data.split_files import SplitFile, SplitFileError, write_seeded_split, write_split

from . import disc_cup_layouts as lay
from .conftest import FOV_CFG
from .download_helpers import serving, sha, url_of
from .rar5_writer import Member as RarMember
from .rar5_writer import rar5_bytes, write_rar5

FIVES_TOP = "FIVES A Fundus Image Dataset for AI-based Vessel Segmentation"
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# --- FIVES ---------------------------------------------------------------------------------


def test_fives_registry_downloads_the_figshare_rar_unpinned() -> None:
    (arc,) = get_dataset("fives").source.archives
    assert arc.url == "https://figshare.com/ndownloader/files/34969398"
    assert arc.sha256 is None and arc.into == "" and arc.filename == "FIVES.rar"


def test_fives_rar_download_extract_pin_prepare(tmp_path: Path, mirror: Path) -> None:
    chase = mirror / "CHASE_DB1"
    cases = {("train", "1_A"): "01L", ("train", "151_D"): "01R", ("test", "1_A"): "02L",
             ("test", "200_N"): "02R"}
    files, labels = {}, {}
    for (folder, name), subject in cases.items():
        rgb = np.asarray(Image.open(chase / f"Image_{subject}.jpg").convert("RGB"))
        label = (chase / f"Image_{subject}_1stHO.png").read_bytes()
        files[f"{FIVES_TOP}/{folder}/Original/{name}.png"] = _png(rgb)
        files[f"{FIVES_TOP}/{folder}/Ground truth/{name}.png"] = label
        labels[f"fives_{folder}_{name}"] = np.asarray(Image.open(io.BytesIO(label))) > 0
    rar = rar5_bytes([RarMember(FIVES_TOP)] + [RarMember(n, d) for n, d in files.items()])
    raw, lock = tmp_path / "raw", tmp_path / "checksums.lock.json"
    spec = get_dataset("fives")
    with serving() as srv:
        srv.files["/ndownloader/files/34969398"] = rar
        url = url_of(srv, "/ndownloader/files/34969398")
        test_spec = dataclasses.replace(spec, source=dataclasses.replace(
            spec.source, archives=(Archive(url),)))
        root = fetch_spec(test_spec, raw, None, lock, allow_subset=True)
    assert root == raw / "fives" / "extracted" / FIVES_TOP
    assert (raw / "fives" / "34969398").read_bytes() == rar
    assert read_lock(lock) == {url: sha(rar)}  # pinned once the layout was found
    out = tmp_path / "processed"
    index = prepare_dataset("fives", root, out, FOV_CFG, workers=2,
                            policy=PreparePolicy(allow_subset=True))
    assert sorted(index["case"]) == sorted(labels)
    assert index.set_index("case")["split"].to_dict() == {
        "fives_train_1_A": "train", "fives_train_151_D": "train", "fives_test_1_A": "test",
        "fives_test_200_N": "test"}
    for _, row in index.iterrows():
        np.testing.assert_array_equal(read_mask(out / row["mask"]), labels[row["case"]])
        assert read_image_any(out / row["image"]).shape == (960, 999, 3)


# --- GRAPE ---------------------------------------------------------------------------------

GRAPE_IDS = ("1_OD_1", "1_OS_1", "2_OD_1", "2_OD_2")
DISC_BOX, CUP_BOX = ((400, 300), (599, 499)), ((450, 350), (549, 449))  # (x, y) corners


def _box(box: tuple[tuple[int, int], tuple[int, int]], dx: int) -> np.ndarray:
    """The 960 × 999 mask of ``box`` shifted by ``dx`` along x (edges included)."""
    (x0, y0), (x1, y1) = box
    mask = np.zeros((960, 999), bool)
    mask[y0:y1 + 1, x0 + dx:x1 + dx + 1] = True
    return mask


def _grape_json(dx: int) -> bytes:
    shapes = [{"label": "OD", "points": lay.corners(DISC_BOX, dx), "shape_type": "polygon"},
              {"label": "OC", "points": lay.corners(CUP_BOX, dx), "shape_type": "polygon"},
              {"label": "disc location", "points": [[0, 0], [9, 9]],
               "shape_type": "rectangle"}]
    return json.dumps({"version": "4.5.6", "shapes": shapes, "imageHeight": 960,
                       "imageWidth": 999}).encode()


def test_grape_rars_side_by_side_split_then_prepare(tmp_path: Path, mirror: Path,
                                                   splits_dir: Path) -> None:
    """The crops, the CFPs (same names, another size) and the outlines extract apart; the
    first download step extracts them so that a seeded split can be drawn from them."""
    chase = sorted((mirror / "CHASE_DB1").glob("Image_*[LR].jpg"))
    kvasir = sorted((mirror / "Kvasir-SEG" / "images").glob("*.jpg"))
    raw, lock = tmp_path / "raw", tmp_path / "lock.json"
    placed = raw / "grape"
    roi = {f"{n}.jpg": chase[k].read_bytes() for k, n in enumerate(GRAPE_IDS)}
    write_rar5(placed / "ROI images.rar", roi)
    write_rar5(placed / "CFPs.rar", {f"{n}.jpg": kvasir[k].read_bytes()
                                     for k, n in enumerate(GRAPE_IDS)})
    write_rar5(placed / "json.rar", {f"json/{n}.json": _grape_json(10 * k)
                                     for k, n in enumerate(GRAPE_IDS)}, ["json"])
    with pytest.raises(SplitFileError) as info:
        fetch_dataset("grape", raw, None, lock)
    msg = str(info.value)
    assert "python -m samlora split --dataset grape --seed 0" in msg
    assert f"the placed archives are extracted to {placed / 'extracted'}" in msg
    spec = get_dataset("grape")
    root = scan_root(spec, raw, None)
    assert root == placed / "extracted" and spec.scan(root) == [f"grape_{n}" for n in GRAPE_IDS]
    write_seeded_split("grape", spec.scan(root), seed=0, splits_dir=splits_dir)
    assert fetch_dataset("grape", raw, None, lock) == placed / "extracted"
    assert (root / "CFPs" / "1_OD_1.jpg").read_bytes() == kvasir[0].read_bytes()
    out = tmp_path / "processed"
    index = prepare_dataset("grape", root, out, FOV_CFG, workers=2)
    assert sorted(index["case"]) == [f"grape_{n}" for n in sorted(GRAPE_IDS)]
    for _, row in index.iterrows():
        k = GRAPE_IDS.index(row["case"].removeprefix("grape_"))
        assert read_image_any(out / row["image"]).shape == (960, 999, 3)  # the crop
        np.testing.assert_array_equal(read_mask(out / row["mask"]), _box(DISC_BOX, 10 * k))
        np.testing.assert_array_equal(read_mask(out / row["mask_cup"]), _box(CUP_BOX, 10 * k))


# --- REFUGE2 -------------------------------------------------------------------------------

#: Inner archive of the REFUGE2 download -> the top folder its members lie under.
REFUGE_INNER = {"REFUGE-Training400.zip": "Training400",
                "Annotation-Training400.zip": "Annotation-Training400",
                "REFUGE-Validation400.zip": "REFUGE-Validation400",
                "REFUGE-Validation400-GT.zip": "REFUGE-Validation400-GT",
                "REFUGE-Test400.zip": "Test400", "REFUGE-Test-GT.zip": "REFUGE-Test-GT"}


def _small_refuge_split(splits_dir: Path) -> None:
    (splits_dir / "refuge2.json").unlink()
    write_split(SplitFile("refuge2", "test_subset", "two synthetic cases per split",
                          {"train": ("refuge2_g0001", "refuge2_n0002"),
                           "val": ("refuge2_V0001", "refuge2_V0002"),
                           "test": ("refuge2_T0001", "refuge2_T0002")}),
                splits_dir / "refuge2.json")


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _zip_tree(folder: Path, prefix: str, extra: dict[str, bytes]) -> bytes:
    """Every file under ``folder`` as ``<prefix><relative path>``, plus ``extra``."""
    files = {f"{prefix}{p.relative_to(folder).as_posix()}": p.read_bytes()
             for p in sorted(folder.rglob("*")) if p.is_file()}
    return _zip(files | extra)


def _check_refuge_prepared(root: Path, out: Path) -> None:
    index = prepare_dataset("refuge2", root, out, FOV_CFG, workers=2)
    assert index["split"].tolist() == ["train", "train", "val", "val", "test", "test"]
    for _, row in index.iterrows():
        np.testing.assert_array_equal(read_mask(out / row["mask"]), lay.box_mask(lay.DISC_XY))
        np.testing.assert_array_equal(read_mask(out / row["mask_cup"]), lay.box_mask(lay.CUP_XY))


def test_refuge2_zip_of_six_zips(tmp_path: Path, splits_dir: Path) -> None:
    _small_refuge_split(splits_dir)
    build = tmp_path / "build"
    lay.build_refuge2(build)
    outer: dict[str, bytes] = {}
    for name, top in REFUGE_INNER.items():
        outer[f"REFUGE2/{name}"] = _zip_tree(build / top, f"{top}/",
                                             {f"__MACOSX/{top}/._x.jpg": APPLEDOUBLE})
        outer[f"__MACOSX/REFUGE2/._{name}"] = APPLEDOUBLE
    placed = tmp_path / "raw" / "refuge2" / "REFUGE2.zip"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(_zip(outer))
    root = fetch_dataset("refuge2", tmp_path / "raw", None, tmp_path / "lock.json")
    extracted = tmp_path / "raw" / "refuge2" / "extracted"
    assert root == extracted / "REFUGE2"
    assert (root / "REFUGE-Training400/Training400/Glaucoma/g0001.jpg").is_file()
    assert (root / "REFUGE-Validation400-GT/Disc_Cup_Masks/V0001.bmp").is_file()  # not doubled
    assert (root / "REFUGE-Test-GT/Disc_Cup_Masks/G/T0001.bmp").is_file()
    assert not [p for p in extracted.rglob("*") if p.suffix == ".zip" or "MACOSX" in p.name
                or p.name.startswith("._")]
    _check_refuge_prepared(root, tmp_path / "processed")


def test_refuge2_training_distribution(tmp_path: Path, splits_dir: Path) -> None:
    _small_refuge_split(splits_dir)
    build = tmp_path / "build"
    lay.build_refuge2(build)
    top = tmp_path / "raw" / "refuge2" / "REFUGE2-Training"
    moves = {"Training400": "REFUGE1-Train-400/Images",
             "Annotation-Training400": "REFUGE1-Train-400/Annotation-Training400",
             "REFUGE-Validation400": "REFUGE1-Val-400/REFUGE-Validation400",
             "REFUGE-Validation400-GT": "REFUGE1-Val-400/REFUGE-Validation400-GT",
             "Test400": "REFUGE1-Test-400/Images",
             "REFUGE-Test-GT": "REFUGE1-Test-400/Annotation"}
    for src, dst in moves.items():
        shutil.copytree(build / src, top / dst)
    root = fetch_dataset("refuge2", tmp_path / "raw", None, tmp_path / "lock.json")
    assert root == top
    _check_refuge_prepared(root, tmp_path / "processed")


def test_refuge2_placement_message_names_the_download(tmp_path: Path) -> None:
    with pytest.raises(RegistrationRequiredError) as info:
        fetch_dataset("refuge2", tmp_path / "raw", None, tmp_path / "lock.json")
    msg = str(info.value)
    assert "Put REFUGE2.zip, or the six archives it holds" in msg
    assert "REFUGE2-Training folder (REFUGE1-Train-400/" in msg
