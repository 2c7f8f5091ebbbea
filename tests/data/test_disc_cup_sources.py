"""REFUGE2, IDRiD, ORIGA, G1020, GRAPE and PAPILA through fetch_dataset / prepare_dataset,
from small archives in each official layout built from synthetic images, plus bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samlora.data.datasets import SegmentationDataset
from samlora.data.download import fetch_dataset
from samlora.data.errors import LabelFormatError, RegistrationRequiredError
from samlora.data.io import read_mask
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import get_dataset
from samlora.data.split_files import SplitFile, write_seeded_split, write_split

from . import disc_cup_layouts as lay
from .conftest import FOV_CFG, snapshot


def _small_split(splits_dir: Path, dataset: str, splits: dict[str, list[str]]) -> None:
    """Replace the committed split of ``dataset`` with a few synthetic cases."""
    (splits_dir / f"{dataset}.json").unlink(missing_ok=True)
    write_split(SplitFile(dataset, "test_subset", "a few synthetic cases",
                          {k: tuple(f"{dataset}_{c}" for c in v) for k, v in splits.items()}),
                splits_dir / f"{dataset}.json")


def _place_and_prepare(name: str, build: Callable[[Path], object], tmp_path: Path,
                       splits_dir: Path, seeded: bool = False) -> tuple[Path, pd.DataFrame]:
    """Build the layout, zip it into raw/<name>/, fetch (extracts) and prepare it."""
    layout = tmp_path / "build" / get_dataset(name).folder
    build(layout)
    if seeded:
        cases = get_dataset(name).scan(layout)
        write_seeded_split(name, cases, seed=0, splits_dir=splits_dir)
    lay.zip_folder(layout, tmp_path / "raw" / name / f"{name}.zip", prefix=f"{layout.name}/")
    root = fetch_dataset(name, tmp_path / "raw", None, tmp_path / "lock.json")
    out = tmp_path / "processed" / name
    return out, prepare_dataset(name, root, out, FOV_CFG, workers=2)


def _check_masks(out: Path, index: pd.DataFrame, cup_col: str | None = "mask_cup") -> None:
    for _, row in index.iterrows():
        disc = read_mask(out / row["mask"])
        np.testing.assert_array_equal(disc, lay.box_mask(lay.DISC_XY))
        assert read_mask(out / row["fov"]).all()  # disc/cup sets: the whole image
        if cup_col and row[cup_col]:
            cup = read_mask(out / row[cup_col])
            assert cup.sum() == lay.CUP_PX and not (cup & ~disc).any()
    assert set(index["fov_source"]) == {"whole_image"}


def test_refuge2_one_map_with_val_split(tmp_path: Path, splits_dir: Path) -> None:
    _small_split(splits_dir, "refuge2", {"train": ["g0001", "n0002"], "val": ["V0001", "V0002"],
                                         "test": ["T0001", "T0002"]})
    build_dir = tmp_path / "build"
    lay.build_refuge2(build_dir)
    placed = tmp_path / "raw" / "refuge2"
    # the REFUGE2 download holds one archive per part; place them side by side
    for part in ("Training400", "Annotation-Training400", "REFUGE-Validation400",
                 "REFUGE-Validation400-GT", "Test400", "REFUGE-Test-GT"):
        lay.zip_folder(build_dir / part, placed / f"{part}.zip", prefix=f"{part}/")
    root = fetch_dataset("refuge2", tmp_path / "raw", None, tmp_path / "lock.json")
    out = tmp_path / "processed"
    index = prepare_dataset("refuge2", root, out, FOV_CFG)
    assert index["split"].tolist() == ["train", "train", "val", "val", "test", "test"]
    assert (index["mask_cup"] != "").all()
    _check_masks(out, index)
    info = json.loads((out / "dataset.json").read_text())
    assert info["primary_label"] == "disc" and info["label_columns"] == {"cup": "mask_cup"}
    assert "OneMap(kind='cup')" in info["label_readers"]["mask_cup"]


def test_refuge2_without_files_says_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(RegistrationRequiredError) as info:
        fetch_dataset("refuge2", tmp_path / "raw", None, tmp_path / "lock.json")
    msg = str(info.value)
    assert "refuge.grand-challenge.org" in msg and str(tmp_path / "raw" / "refuge2") in msg
    assert "REFUGE-Test-GT.zip" in msg and "Training400/Glaucoma/g0001.jpg" in msg


def test_committed_official_splits() -> None:
    refuge = get_dataset("refuge2").split
    assert refuge.counts() == {"train": 400, "val": 400, "test": 400}
    assert get_dataset("idrid").split.counts() == {"train": 54, "test": 27}
    drishti = get_dataset("drishti_gs1").split
    assert drishti.counts() == {"train": 50, "test": 51}
    assert sorted(drishti.cases) == [f"drishti_gs1_{i:03d}" for i in range(1, 102)]
    origa = get_dataset("origa").split
    assert origa.counts() == {"train": 488, "test": 162} and origa.seed == 0


def test_idrid_red_disc_masks(tmp_path: Path, splits_dir: Path) -> None:
    _small_split(splits_dir, "idrid", {"train": ["01", "02"], "test": ["55"]})
    out, index = _place_and_prepare("idrid", lay.build_idrid, tmp_path, splits_dir)
    assert list(index["case"]) == ["idrid_01", "idrid_02", "idrid_55"]
    assert "mask_cup" not in index.columns
    _check_masks(out, index, cup_col=None)


def test_origa_mat_maps(tmp_path: Path, splits_dir: Path) -> None:
    _small_split(splits_dir, "origa", {"train": ["001", "002"], "test": ["003"]})
    out, index = _place_and_prepare("origa", lay.build_origa, tmp_path, splits_dir)
    assert (index["mask_cup"] != "").all()
    _check_masks(out, index)
    before = snapshot(out)  # idempotent: a second run writes nothing
    prepare_dataset("origa", json.loads((tmp_path / "raw/origa/source.json").read_text())["root"],
                    out, FOV_CFG)
    assert snapshot(out) == before


def test_origa_mat_without_variable_named(tmp_path: Path, splits_dir: Path) -> None:
    _small_split(splits_dir, "origa", {"train": ["001"], "test": ["002"]})
    lay.build_origa(tmp_path / "ORIGA", ids=("001", "002"))
    lay.build_origa(tmp_path / "ORIGA", ids=("002",), variable="seg")
    with pytest.raises(LabelFormatError, match=r"002\.mat.*no variable 'mask'"):
        prepare_dataset("origa", tmp_path / "ORIGA", tmp_path / "out", FOV_CFG)
    assert not (tmp_path / "out" / "index.csv").exists()


def test_g1020_polygons_cup_on_a_subset(tmp_path: Path, splits_dir: Path) -> None:
    out, index = _place_and_prepare("g1020", lay.build_g1020, tmp_path, splits_dir, seeded=True)
    assert len(index) == 4 and (index["split"] == "test").sum() == 1
    no_cup = index.loc[index["mask_cup"] == "", "case"].tolist()
    assert no_cup == ["g1020_image_0"]
    _check_masks(out, index)
    cup = SegmentationDataset(out, label="cup", size=64, cache=False)
    assert "g1020_image_0" not in cup.cases and len(cup) == 3
    item = cup[0]
    assert float(item["mask"].sum()) == lay.CUP_PX
    assert float(SegmentationDataset(out, size=64)[0]["mask"].sum()) == lay.DISC_PX
    with pytest.raises(KeyError, match="g1020_image_0"):
        SegmentationDataset(out, cases=["g1020_image_0"], label="cup")
    with pytest.raises(KeyError, match="no label 'vessel'"):
        SegmentationDataset(out, label="vessel")


def test_g1020_json_without_disc_named(tmp_path: Path, splits_dir: Path) -> None:
    root = tmp_path / "G1020"
    lay.build_g1020(root, n=3)
    lay.labelme(root / "Images" / "image_2.json", {"cup": lay.corners(lay.CUP_XY)})
    write_seeded_split("g1020", get_dataset("g1020").scan(root), seed=0, splits_dir=splits_dir)
    with pytest.raises(LabelFormatError, match=r"image_2\.json.*no polygon labelled disc"):
        prepare_dataset("g1020", root, tmp_path / "out", FOV_CFG)
    assert not (tmp_path / "out" / "index.csv").exists()


def test_grape_roi_polygons(tmp_path: Path, splits_dir: Path) -> None:
    out, index = _place_and_prepare("grape", lay.build_grape, tmp_path, splits_dir, seeded=True)
    assert sorted(index["case"]) == [f"grape_{k}_OD_1" for k in range(1, 5)]
    assert (index["mask_cup"] != "").all()
    _check_masks(out, index)


def test_papila_two_experts(tmp_path: Path, splits_dir: Path) -> None:
    out, index = _place_and_prepare("papila", lay.build_papila, tmp_path, splits_dir,
                                    seeded=True)
    assert len(index) == 4 and (index["mask2"] != "").all()
    _check_masks(out, index)
    shifted = np.roll(lay.box_mask(lay.DISC_XY), 1, axis=1)  # expert 2: one pixel to the right
    for _, row in index.iterrows():
        np.testing.assert_array_equal(read_mask(out / row["mask2"]), shifted)
        assert read_mask(out / row["mask_cup2"]).sum() == lay.CUP_PX


def test_papila_odd_contour_named(tmp_path: Path, splits_dir: Path) -> None:
    root = tmp_path / "PAPILA"
    lay.build_papila(root, ids=("RET002OD", "RET002OS"))
    bad = root / "ExpertsSegmentations" / "Contours" / "RET002OS_cup_exp1.txt"
    bad.write_text("15 12\n24 12\n24\n15 19\n")
    write_seeded_split("papila", get_dataset("papila").scan(root), seed=0, splits_dir=splits_dir)
    with pytest.raises(LabelFormatError, match=r"RET002OS_cup_exp1\.txt.*odd number"):
        prepare_dataset("papila", root, tmp_path / "out", FOV_CFG)
    assert not (tmp_path / "out" / "index.csv").exists()
