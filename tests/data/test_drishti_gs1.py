"""Drishti-GS1 end to end from the mirror's 10 + 10 subset (soft maps, disc and cup), and the
soft-map rule through prepare on the official folder names, built from synthetic maps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samlora.data import split_files
from samlora.data.download import fetch_dataset
from samlora.data.errors import MissingFilesError
from samlora.data.io import read_image_any, read_mask
from samlora.data.labels import LabelOptions, SoftMap
from samlora.data.layout import check_layout
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.registry import get_dataset
from samlora.data.split_files import SplitFile, write_split

from .conftest import FOV_CFG, snapshot

SUBSET = PreparePolicy(allow_subset=True)
TRAIN = ["002", "004", "008", "010", "012", "015", "016", "017", "018", "022"]
TEST = ["001", "003", "005", "006", "007", "009", "011", "013", "014", "019"]


@pytest.fixture(scope="module")
def drishti(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The mirror's subset prepared once (majority rule): (folder, index)."""
    base = tmp_path_factory.mktemp("drishti")
    root = fetch_dataset("drishti_gs1", base / "raw", mirror, base / "lock.json",
                         allow_subset=True)
    out = base / "processed"
    return out, prepare_dataset("drishti_gs1", root, out, FOV_CFG, policy=SUBSET)


def test_counts_sizes_and_subset_recorded(mirror: Path, drishti: tuple[Path, pd.DataFrame]
                                          ) -> None:
    out, index = drishti
    assert index.loc[index["split"] == "train", "case"].tolist() == \
        [f"drishti_gs1_{n}" for n in TRAIN]
    assert index.loc[index["split"] == "test", "case"].tolist() == \
        [f"drishti_gs1_{n}" for n in TEST]
    info = json.loads((out / "dataset.json").read_text())
    assert info["subset"]["present"] == 20 and info["subset"]["of"] == 101
    assert info["soft_maps"] == "majority" and info["primary_label"] == "disc"
    for _, row in index.iterrows():
        split_dir = "Training" if row["split"] == "train" else "Test"
        name = row["case"].replace("drishti_gs1_", "drishtiGS_")
        with Image.open(mirror / "Drishti-GS1" / split_dir / "Images/ALL" / f"{name}.png") as im:
            hw = (im.height, im.width)
        assert (int(row["height"]), int(row["width"])) == hw
        for col in ("mask", "mask_cup", "fov"):
            arr = read_image_any(out / row[col])
            assert arr.shape == hw and set(np.unique(arr)) <= {0, 255}
        assert read_mask(out / row["fov"]).all()
    assert set(index["fov_source"]) == {"whole_image"}


def test_cup_inside_disc_and_plausible_sizes(drishti: tuple[Path, pd.DataFrame]) -> None:
    out, index = drishti
    for _, row in index.iterrows():
        disc, cup = read_mask(out / row["mask"]), read_mask(out / row["mask_cup"])
        assert not (cup & ~disc).any(), row["case"]
        assert 0.005 < disc.mean() < 0.1 and 0.1 < cup.sum() / disc.sum() < 0.9, row["case"]


def test_known_pixel_count_of_a_real_soft_map(mirror: Path,
                                              drishti: tuple[Path, pd.DataFrame]) -> None:
    out, _ = drishti
    soft = mirror / "Drishti-GS1/Training/GT/drishtiGS_002/SoftMap/drishtiGS_002_ODsegSoftmap.png"
    expected = int((np.asarray(Image.open(soft)) >= 128).sum())  # independent of samlora
    assert expected > 10_000
    assert int(read_mask(out / "masks/drishti_gs1_002.png").sum()) == expected


def test_union_contains_majority(mirror: Path, drishti: tuple[Path, pd.DataFrame]) -> None:
    out, index = drishti
    spec = get_dataset("drishti_gs1")
    records = check_layout(spec, mirror / spec.folder, allow_subset=True).records
    grew = 0
    for rec, (_, row) in zip(records, index.iterrows(), strict=True):
        hw = (int(row["height"]), int(row["width"]))
        for path, col in ((rec.mask, "mask"), (rec.extra[0].path, "mask_cup")):
            union = SoftMap()(path, hw, LabelOptions("union"))
            majority = read_mask(out / row[col])
            assert not (majority & ~union).any(), path
            grew += int(union.sum() > majority.sum())
    assert grew > 0  # low-agreement pixels exist, so union is strictly larger somewhere


def test_second_run_changes_nothing(mirror: Path, drishti: tuple[Path, pd.DataFrame]) -> None:
    out, _ = drishti
    before = snapshot(out)
    prepare_dataset("drishti_gs1", mirror / "Drishti-GS1", out, FOV_CFG, policy=SUBSET)
    assert snapshot(out) == before


def test_without_subset_permission_the_absent_cases_are_an_error(mirror: Path,
                                                                 tmp_path: Path) -> None:
    with pytest.raises(MissingFilesError, match="drishti_gs1_024"):
        prepare_dataset("drishti_gs1", mirror / "Drishti-GS1", tmp_path / "out", FOV_CFG)
    assert not (tmp_path / "out" / "index.csv").exists()


def _soft_layout(root: Path) -> None:
    """Official folder names (Images/, Test/Test_GT/) with one train and one test case."""
    levels = np.zeros((20, 30), np.uint8)
    levels[2:12, 3:13] = 64      # 100 px marked by a minority
    levels[4:10, 5:11] = 128     # 36 px by half
    levels[5:9, 6:10] = 255      # 16 px by all
    for split, gt, n in (("Training", "GT", "002"), ("Test", "Test_GT", "001")):
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(
            _mk(root / split / "Images" / f"drishtiGS_{n}.png"))
        soft = root / split / gt / f"drishtiGS_{n}" / "SoftMap"
        Image.fromarray(levels).save(_mk(soft / f"drishtiGS_{n}_ODsegSoftmap.png"))
        Image.fromarray(np.where(levels == 255, 191, 0).astype(np.uint8)).save(
            soft / f"drishtiGS_{n}_cupsegSoftmap.png")


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize(("rule", "disc_px"), [("majority", 36), ("union", 100)])
def test_soft_map_rule_through_prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       rule: str, disc_px: int) -> None:
    splits = tmp_path / "splits"
    shutil.copytree(split_files.SPLITS_DIR, splits)
    monkeypatch.setattr(split_files, "SPLITS_DIR", splits)
    (splits / "drishti_gs1.json").unlink()
    write_split(SplitFile("drishti_gs1", "test_subset", "two synthetic cases",
                          {"train": ("drishti_gs1_002",), "test": ("drishti_gs1_001",)}),
                splits / "drishti_gs1.json")
    _soft_layout(tmp_path / "D")
    out = tmp_path / "out"
    index = prepare_dataset("drishti_gs1", tmp_path / "D", out, FOV_CFG,
                            options=LabelOptions(rule))
    for _, row in index.iterrows():
        assert read_mask(out / row["mask"]).sum() == disc_px
        assert read_mask(out / row["mask_cup"]).sum() == 16  # 191 counts under both rules
    assert json.loads((out / "dataset.json").read_text())["soft_maps"] == rule
