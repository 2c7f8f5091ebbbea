"""Disc/cup releases as they come: IDRiD's palette and grey masks, empty disc/cup masks
refused, ORIGA's folder names, wide maps and Set A/B, PAPILA's pinned figshare zip, G1020's
json/ folder, Drishti-GS1's official folder names.

Inputs are built in tmp_path in each release's layout: synthetic images from
``disc_cup_layouts``, a DRIVE photograph as a stand-in IDRiD image, and real Drishti-GS1
files from the mirror rearranged into the official archive's folders.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from samlora.data import split_files
from samlora.data.download import fetch_dataset, fetch_spec
from samlora.data.errors import LabelFormatError, MissingFilesError
from samlora.data.io import read_mask
from samlora.data.labels import AnyChannel, LabelOptions, MatMap
from samlora.data.layout import scan_root
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import Archive, get_dataset
from samlora.data.sources import origa
from samlora.data.split_files import (
    SplitFile,
    SplitFileError,
    check_variant,
    load_split,
    write_seeded_split,
    write_split,
)

from . import disc_cup_layouts as lay
from .conftest import FOV_CFG
from .download_helpers import serving, sha

MAJORITY = LabelOptions()
#: The top folder of PAPILA's figshare zip.
PAPILA_TOP = "PapilaDB-PAPILA-17f8fa7746adb20275b5b6a0d99dc9dfe3007e9f"


def _split(splits_dir: Path, dataset: str, splits: dict[str, list[str]], **kw: object) -> None:
    """Replace the split file of ``dataset`` with a few cases (native ids)."""
    (splits_dir / f"{dataset}.json").unlink(missing_ok=True)
    write_split(SplitFile(dataset, "test_subset", "a few cases",
                          {k: tuple(f"{dataset}_{c}" for c in v) for k, v in splits.items()},
                          **kw), splits_dir / f"{dataset}.json")


def _save(path: Path, im: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


# --- IDRiD: red disc masks stored as RGB, palette or grey ------------------------------------


def _red_disc(box: np.ndarray, mode: str) -> Image.Image:
    """The disc ``box`` drawn in pure red, stored as ``mode``: RGB, P (palette) or L (grey)."""
    if mode == "RGB":
        rgb = np.zeros((*box.shape, 3), np.uint8)
        rgb[box, 0] = 255
        return Image.fromarray(rgb)
    if mode == "P":
        im = Image.fromarray(box.astype(np.uint8), mode="P")
        im.putpalette([0, 0, 0, 255, 0, 0])
        return im
    return Image.fromarray((box * 76).astype(np.uint8))  # red as grey: 0.299 * 255 = 76


@pytest.mark.parametrize("mode", ["RGB", "P", "L"])
def test_any_channel_finds_a_red_disc_however_stored(tmp_path: Path, mode: str) -> None:
    box = np.zeros((30, 40), bool)
    box[5:25, 10:30] = True  # 400 px
    path = _save(tmp_path / f"IDRiD_01_OD_{mode}.tif", _red_disc(box, mode))
    with Image.open(path) as im:
        assert im.mode == mode
    got = AnyChannel()(path, box.shape, MAJORITY)
    assert int(got.sum()) == 400 and np.array_equal(got, box)


def _idrid(root: Path, modes: dict[int, str], drive: Path) -> tuple[int, int]:
    """IDRiD's layout with a DRIVE photograph as stand-in image; returns (H, W)."""
    with Image.open(drive / "training" / "images" / "21_training.tif") as im:
        photo = im.convert("RGB")
    h, w = photo.height, photo.width
    top = root / "A. Segmentation"
    for n, mode in modes.items():
        sub = "a. Training Set" if n <= 54 else "b. Testing Set"
        _save(top / "1. Original Images" / sub / f"IDRiD_{n:02d}.jpg", photo)
        box = np.zeros((h, w), bool)
        box[200:300, 250:350] = True
        gt = top / "2. All Segmentation Groundtruths" / sub / "5. Optic Disc"
        _save(gt / f"IDRiD_{n:02d}_OD.tif", _red_disc(box, mode))
    return h, w


def test_idrid_palette_and_grey_masks_through_prepare(tmp_path: Path, splits_dir: Path,
                                                      mirror: Path) -> None:
    _split(splits_dir, "idrid", {"train": ["01", "02"], "test": ["55"]})
    _idrid(tmp_path / "build", {1: "P", 2: "L", 55: "RGB"}, mirror / "DRIVE")
    lay.zip_folder(tmp_path / "build", tmp_path / "raw/idrid/A. Segmentation.zip")
    root = fetch_dataset("idrid", tmp_path / "raw", None, tmp_path / "lock.json")
    index = prepare_dataset("idrid", root, tmp_path / "out", FOV_CFG)
    for _, row in index.iterrows():
        assert int(read_mask(tmp_path / "out" / row["mask"]).sum()) == 100 * 100, row["case"]


def test_idrid_empty_disc_mask_is_an_error(tmp_path: Path, splits_dir: Path,
                                           mirror: Path) -> None:
    _split(splits_dir, "idrid", {"train": ["01"], "test": ["55"]})
    h, w = _idrid(tmp_path / "I", {1: "RGB", 55: "RGB"}, mirror / "DRIVE")
    bad = (tmp_path / "I/A. Segmentation/2. All Segmentation Groundtruths/b. Testing Set/"
           "5. Optic Disc/IDRiD_55_OD.tif")
    _save(bad, Image.fromarray(np.zeros((h, w, 3), np.uint8)))
    with pytest.raises(LabelFormatError, match=r"IDRiD_55_OD\.tif: decodes to an empty disc "
                                               r"mask \(AnyChannel\(\)\), but every idrid "
                                               r"image shows its disc"):
        prepare_dataset("idrid", tmp_path / "I", tmp_path / "out", FOV_CFG)
    assert not (tmp_path / "out" / "index.csv").exists()


# --- every disc/cup set: a structure every image shows may not decode empty ------------------


def _far(box: tuple[tuple[int, int], tuple[int, int]]) -> list[list[int]]:
    """The box's corners moved outside the image (the polygon rasterises to nothing)."""
    return lay.corners(box, dx=1000)


def _refuge2(root: Path) -> str:
    lay.build_refuge2(root)
    bad = root / "REFUGE-Test-GT/Disc_Cup_Masks/N/T0002.bmp"
    Image.fromarray(np.full((lay.H, lay.W), 255, np.uint8)).save(bad)  # all background
    return r"T0002\.bmp: decodes to an empty disc mask"


def _drishti(root: Path) -> str:
    for split, gt, n in (("Training", "GT", "002"), ("Test", "Test_GT", "001")):
        lay.write_image(root / split / "Images" / f"drishtiGS_{n}.png", int(n))
        soft = root / split / gt / f"drishtiGS_{n}" / "SoftMap"
        disc = lay.box_mask(lay.DISC_XY).astype(np.uint8) * 255
        _save(soft / f"drishtiGS_{n}_ODsegSoftmap.png", Image.fromarray(disc))
        cup = lay.box_mask(lay.CUP_XY).astype(np.uint8) * (64 if n == "001" else 255)
        _save(soft / f"drishtiGS_{n}_cupsegSoftmap.png", Image.fromarray(cup))
    return r"drishtiGS_001_cupsegSoftmap\.png: decodes to an empty cup mask \(SoftMap"


def _origa(root: Path) -> str:
    lay.build_origa(root, ids=("001", "002", "003"))
    scipy.io.savemat(root / "Semi-automatic-annotations/002.mat",
                     {"mask": lay.box_mask(lay.DISC_XY).astype(np.uint8)})  # no value 2
    return r"002\.mat: decodes to an empty cup mask \(MatMap\(variable='mask', values=\(2,\)"


def _g1020(root: Path) -> str:
    lay.build_g1020(root, n=3)
    lay.labelme(root / "Images/image_1.json", {"disc": _far(lay.DISC_XY),
                                               "cup": lay.corners(lay.CUP_XY)})
    return r"image_1\.json: decodes to an empty disc mask"


def _grape(root: Path) -> str:
    lay.build_grape(root, n=3)
    lay.labelme(root / "json/2_OD_1.json", {"OD": lay.corners(lay.DISC_XY),
                                            "OC": _far(lay.CUP_XY)})
    return r"2_OD_1\.json: decodes to an empty cup mask"


def _papila(root: Path) -> str:
    lay.build_papila(root, ids=("RET002OD", "RET002OS"))
    far = "\n".join(f"{x} {y}" for x, y in _far(lay.DISC_XY))
    (root / "ExpertsSegmentations/Contours/RET002OS_disc_exp2.txt").write_text(far)
    return r"RET002OS_disc_exp2\.txt: decodes to an empty disc mask \(ContourText\(\)\), " \
           r"but every papila image shows its disc"


@pytest.mark.parametrize(("name", "build", "cases"), [
    ("refuge2", _refuge2, {"train": ["g0001", "n0002"], "val": ["V0001", "V0002"],
                           "test": ["T0001", "T0002"]}),
    ("drishti_gs1", _drishti, {"train": ["002"], "test": ["001"]}),
    ("origa", _origa, {"train": ["001", "002"], "test": ["003"]}),
    ("g1020", _g1020, {"train": ["image_0", "image_2"], "test": ["image_1"]}),
    ("grape", _grape, {"train": ["1_OD_1", "3_OD_1"], "test": ["2_OD_1"]}),
    ("papila", _papila, {"train": ["RET002OD"], "test": ["RET002OS"]}),
])
def test_an_empty_disc_or_cup_is_an_error_naming_the_file(tmp_path: Path, splits_dir: Path,
                                                          name: str, build, cases) -> None:
    _split(splits_dir, name, cases)
    match = build(tmp_path / "data")
    with pytest.raises(LabelFormatError, match=match):
        prepare_dataset(name, tmp_path / "data", tmp_path / "out", FOV_CFG, workers=1)
    assert not (tmp_path / "out" / "index.csv").exists()


def test_g1020_cup_absent_stays_an_empty_cell(tmp_path: Path, splits_dir: Path) -> None:
    lay.build_g1020(tmp_path / "G", n=3)  # image_0 has no cup polygon
    _split(splits_dir, "g1020", {"train": ["image_0", "image_1"], "test": ["image_2"]})
    index = prepare_dataset("g1020", tmp_path / "G", tmp_path / "out", FOV_CFG)
    assert index.set_index("case").loc["g1020_image_0", "mask_cup"] == ""


# --- ORIGA ----------------------------------------------------------------------------------


LONG = "Semi-automatic-annotations-done-by-doctors-eg-ground-truth"


def test_origa_long_annotation_folder_and_wide_maps(tmp_path: Path, splits_dir: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    _split(splits_dir, "origa", {"train": ["001", "002"], "test": ["003"]})
    root = tmp_path / "ORIGA"
    lay.build_origa(root)
    (root / "Semi-automatic-annotations").rename(root / LONG)
    wide = np.zeros((lay.H, lay.W + 7), np.uint8)  # 3 px more on the left, 4 on the right
    wide[:, 3:3 + lay.W] = scipy.io.loadmat(root / LONG / "002.mat")["mask"]
    wide[:, :3] = 1  # rim pixels in the margin: cropped away
    scipy.io.savemat(root / LONG / "002.mat", {"mask": wide})
    with caplog.at_level(logging.INFO, logger="samlora.data.labels"):
        index = prepare_dataset("origa", root, tmp_path / "out", FOV_CFG)
    for _, row in index.iterrows():
        np.testing.assert_array_equal(read_mask(tmp_path / "out" / row["mask"]),
                                      lay.box_mask(lay.DISC_XY))
        assert read_mask(tmp_path / "out" / row["mask_cup"]).sum() == lay.CUP_PX
    crops = [r.getMessage() for r in caplog.records if "centre-cropped" in r.getMessage()]
    assert crops and all(f"{LONG}/002.mat: label map is 71 px wide, its image 64 px" in m
                         for m in crops)


def test_origa_map_of_another_height_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "004.mat"
    scipy.io.savemat(path, {"mask": np.ones((10, 14), np.uint8)})
    assert MatMap("mask", (1,), crop_width=True)(path, (10, 12), MAJORITY).shape == (10, 12)
    assert MatMap("mask", (1,), crop_width=True)(path, (9, 12), MAJORITY).shape == (10, 14)
    assert MatMap("mask", (1,))(path, (10, 12), MAJORITY).shape == (10, 14)


def test_origa_copy_without_masks_says_which_copy_is_needed(tmp_path: Path,
                                                            splits_dir: Path) -> None:
    _split(splits_dir, "origa", {"train": ["001"], "test": ["002"]})
    images = tmp_path / "raw/origa/ORIGA/Images"
    for i, n in enumerate(("001", "002")):
        lay.write_image(images / f"{n}.jpg", i)
    with pytest.raises(MissingFilesError) as info:
        fetch_dataset("origa", tmp_path / "raw", None, tmp_path / "lock.json")
    msg = str(info.value)
    assert "Semi-automatic-annotations/001.mat" in msg and LONG in msg
    assert "a copy with only Images/ and OrigaList.csv has no masks and cannot be used" in msg
    assert "https://www.kaggle.com/datasets/arnavjain1/glaucoma-datasets" in msg


def _origa_list(root: Path, sets: dict[str, str]) -> None:
    rows = ["Eye,Filename,ExpCDR,Set,Glaucoma"]
    rows += [f"OD,{n}.jpg,0.5,{s},0" for n, s in sets.items()]
    (root / "OrigaList.csv").write_text("\n".join(rows) + "\n")


def test_origa_set_a_b_recorded_once_and_prepared(tmp_path: Path, splits_dir: Path) -> None:
    ids = ("001", "002", "003", "004")
    _split(splits_dir, "origa", {"train": ["001", "002", "003"], "test": ["004"]},
           variants={"set_a_b": "Set A train, Set B test"}, recorded={"set_a_b": None})
    with pytest.raises(SplitFileError, match="'set_a_b' is declared but not recorded yet"):
        check_variant("origa", "set_a_b")
    root = tmp_path / "ORIGA"
    lay.build_origa(root, ids=ids)
    _origa_list(root, {"001": "A", "002": "B", "003": "A", "004": "B"})
    assert origa.main([str(root)]) == 0
    path = splits_dir / "origa.json"
    assert load_split("origa").assignment("set_a_b") == {
        "origa_001": "train", "origa_003": "train", "origa_002": "test", "origa_004": "test"}
    stamp = path.stat().st_mtime_ns
    assert origa.record_set_a_b(root) == path and path.stat().st_mtime_ns == stamp  # no-op
    index = prepare_dataset("origa", root, tmp_path / "out", FOV_CFG,
                            policy=PreparePolicy(split_variant="set_a_b"))
    assert dict(zip(index["case"], index["split"], strict=True)) == \
        load_split("origa").assignment("set_a_b")
    _origa_list(root, {"001": "B", "002": "A", "003": "A", "004": "B"})
    with pytest.raises(SplitFileError, match="already recorded with another split"):
        origa.record_set_a_b(root)


def test_origa_set_list_must_cover_the_split_file(tmp_path: Path, splits_dir: Path) -> None:
    _split(splits_dir, "origa", {"train": ["001", "002"], "test": ["003"]},
           variants={"set_a_b": "Set A / Set B"}, recorded={"set_a_b": None})
    _origa_list(tmp_path, {"001": "A", "002": "B"})
    with pytest.raises(SplitFileError, match=r"variant_splits\.set_a_b must split exactly "
                                             r"the file's 3 cases.*origa_003"):
        origa.record_set_a_b(tmp_path)
    assert load_split("origa").recorded == {"set_a_b": None}  # nothing written
    _origa_list(tmp_path, {"001": "A", "002": "C", "003": "B"})
    with pytest.raises(ValueError, match=r"OrigaList\.csv: row 3 \(002\.jpg\) has Set 'C'"):
        origa.record_set_a_b(tmp_path)


def test_a_recorded_variant_needs_a_description_and_the_file_cases(tmp_path: Path) -> None:
    base = {"dataset": "origa", "convention": "c", "description": "d",
            "splits": {"train": ["origa_001"], "test": ["origa_002"]}}
    bad = [({"variant_splits": {"set_a_b": None}}, r"variant_splits\.set_a_b needs a "
                                                   r"description under 'variants'"),
           ({"variants": {"set_a_b": "A/B"},
             "variant_splits": {"set_a_b": {"train": ["origa_001"]}}},
            r"must split exactly the file's 2 cases.*origa_002"),
           ({"variants": {"set_a_b": "A/B"}}, r"unknown variant\(s\) \['set_a_b'\]")]
    for extra, match in bad:
        path = tmp_path / "origa.json"
        path.write_text(json.dumps(base | extra))
        with pytest.raises(SplitFileError, match=match):
            split_files.parse_split(path)


def test_committed_origa_split_declares_set_a_b() -> None:
    split = load_split("origa")
    assert split.counts() == {"train": 488, "test": 162}
    assert split.recorded == {"set_a_b": None}
    with pytest.raises(SplitFileError, match=r"not recorded yet .*python -m "
                                             r"samlora\.data\.sources\.origa"):
        check_variant("origa", "set_a_b")


# --- PAPILA: the pinned figshare zip ---------------------------------------------------------


def test_papila_pins_the_figshare_archive() -> None:
    (arc,) = get_dataset("papila").source.archives
    assert arc == Archive("https://figshare.com/ndownloader/files/35013982",
                          "15b053dff496bc8e53eb8a8d0707ef73ba3d56c988eea92b65832c9c82852a7d",
                          name="PAPILA.zip")
    assert arc.filename == "PAPILA.zip"  # saved under a readable name
    assert Archive(arc.url).filename == "35013982"  # a bare number: extracted by content


def test_papila_download_without_suffix_and_macos_copies(tmp_path: Path,
                                                         splits_dir: Path) -> None:
    build = tmp_path / "build" / PAPILA_TOP
    lay.build_papila(build, ids=("RET002OD", "RET002OS", "RET062OD", "RET062OS"))
    contours = build / "ExpertsSegmentations/Contours"
    (contours / "RET062OD_cup_exp2 2.txt").write_text("1 2 3\n")  # unreadable if read
    shutil.copy(build / "FundusImages/RET002OD.jpg", build / "FundusImages/RET002OD 2.jpg")
    (build / "HelpCode").mkdir()
    (build / "HelpCode/readme.txt").write_text("authors' code\n")
    data = lay.zip_folder(build, tmp_path / "papila.zip", prefix=f"{PAPILA_TOP}/").read_bytes()
    raw = tmp_path / "raw"
    with serving() as srv:
        srv.files["/ndownloader/files/35013982"] = data
        url = f"http://127.0.0.1:{srv.server_address[1]}/ndownloader/files/35013982"
        base = get_dataset("papila")
        spec = dataclasses.replace(base, source=dataclasses.replace(
            base.source, archives=(Archive(url, sha(data)),)))
        with pytest.raises(SplitFileError, match="python -m samlora split --dataset papila"):
            fetch_spec(spec, raw, None, tmp_path / "lock.json")  # no split drawn yet
        cases = spec.scan(scan_root(spec, raw, None))
        assert cases == ["papila_RET002OD", "papila_RET002OS", "papila_RET062OD",
                         "papila_RET062OS"]
        write_seeded_split("papila", cases, seed=0, splits_dir=splits_dir)
        root = fetch_spec(spec, raw, None, tmp_path / "lock.json")
    assert root == raw / "papila" / "extracted" / PAPILA_TOP
    assert (raw / "papila" / "35013982").is_file()
    index = prepare_dataset("papila", root, tmp_path / "out", FOV_CFG)
    shifted = np.roll(lay.box_mask(lay.DISC_XY), 1, axis=1)  # expert 2: one pixel right
    for _, row in index.iterrows():
        np.testing.assert_array_equal(read_mask(tmp_path / "out" / row["mask"]),
                                      lay.box_mask(lay.DISC_XY))
        np.testing.assert_array_equal(read_mask(tmp_path / "out" / row["mask2"]), shifted)
        assert read_mask(tmp_path / "out" / row["mask_cup2"]).sum() == lay.CUP_PX


# --- G1020: JSONs in Images/ or json/ -------------------------------------------------------


def test_g1020_jsons_in_a_json_folder(tmp_path: Path, splits_dir: Path) -> None:
    root = tmp_path / "G1020"
    lay.build_g1020(root, n=4)
    (root / "json").mkdir()
    for p in sorted((root / "Images").glob("*.json")):
        p.rename(root / "json" / p.name)
    (root / "G1020.csv").write_text("imageID,binaryLabels\nimage_0.jpg,0\n")
    write_seeded_split("g1020", get_dataset("g1020").scan(root), seed=0, splits_dir=splits_dir)
    index = prepare_dataset("g1020", root, tmp_path / "out", FOV_CFG)
    assert len(index) == 4
    assert index.loc[index["mask_cup"] == "", "case"].tolist() == ["g1020_image_0"]
    for _, row in index.iterrows():
        np.testing.assert_array_equal(read_mask(tmp_path / "out" / row["mask"]),
                                      lay.box_mask(lay.DISC_XY))


# --- Drishti-GS1: the official archive's folder names, from real files ----------------------


def test_drishti_official_folder_names_from_real_files(tmp_path: Path, splits_dir: Path,
                                                       mirror: Path) -> None:
    """``Drishti-GS1_files/{Training,Test}/Images/`` and ``Test/Test_GT/`` (bob.ip.binseg's
    protocol paths), filled with the mirror's files (``Images/ALL/`` and ``Test/GT/``)."""
    _split(splits_dir, "drishti_gs1", {"train": ["002"], "test": ["001"]})
    src, top = mirror / "Drishti-GS1", tmp_path / "build" / "Drishti-GS1_files"
    for split, gt, n in (("Training", "GT", "002"), ("Test", "Test_GT", "001")):
        name = f"drishtiGS_{n}"
        (top / split / "Images").mkdir(parents=True)
        shutil.copy(src / split / "Images/ALL" / f"{name}.png", top / split / "Images")
        shutil.copytree(src / split / "GT" / name, top / split / gt / name)
    lay.zip_folder(tmp_path / "build", tmp_path / "raw/drishti_gs1/Drishti-GS1_files.zip")
    root = fetch_dataset("drishti_gs1", tmp_path / "raw", None, tmp_path / "lock.json")
    assert root.name == "Drishti-GS1_files"
    recs = {r.case: r for r in get_dataset("drishti_gs1").records(root)}
    assert "Test/Test_GT/drishtiGS_001/SoftMap" in recs["drishti_gs1_001"].mask.as_posix()
    index = prepare_dataset("drishti_gs1", root, tmp_path / "out", FOV_CFG)
    for _, row in index.iterrows():
        name = row["case"].replace("drishti_gs1_", "drishtiGS_")
        split = "Training" if row["split"] == "train" else "Test"
        soft = src / split / "GT" / name / "SoftMap" / f"{name}_ODsegSoftmap.png"
        expected = int((np.asarray(Image.open(soft)) >= 128).sum())  # independent of samlora
        assert int(read_mask(tmp_path / "out" / row["mask"]).sum()) == expected > 10_000
    assert json.loads((tmp_path / "out/dataset.json").read_text())["soft_maps"] == "majority"
