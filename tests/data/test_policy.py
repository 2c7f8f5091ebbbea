"""data.reference (union of annotators) and data.resolution (longest side N), on CHASE_DB1.

Four real CHASE_DB1 cases (two train, two test) keep the file fast: a subset, allowed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samlora.data.io import read_image_any, read_mask
from samlora.data.policy import PreparePolicy, apply_reference, resize_case
from samlora.data.prepare import prepare_dataset
from samlora.evaluation.evaluate import evaluate_predictions
from samlora.utils.io import write_prob_png

from .conftest import FOV_CFG, snapshot

POLICY = PreparePolicy(reference="union", resolution=256, allow_subset=True)
NATIVE = PreparePolicy(allow_subset=True)


@pytest.fixture(scope="module")
def chase4(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CHASE_DB1 folder holding cases 01L, 01R (train) and 11L, 11R (test)."""
    root = tmp_path_factory.mktemp("chase4") / "CHASE_DB1"
    root.mkdir()
    for nid in ("01L", "01R", "11L", "11R"):
        for p in (mirror / "CHASE_DB1").glob(f"Image_{nid}*"):
            shutil.copy(p, root / p.name)
    return root


@pytest.fixture(scope="module")
def chase_256(chase4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four cases prepared with the union reference at longest side 256."""
    out = tmp_path_factory.mktemp("policy") / "chase_db1"
    prepare_dataset("chase_db1", chase4, out, FOV_CFG, policy=POLICY)
    return out


def _index(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "index.csv", dtype=str, keep_default_na=False)


def test_resized_sizes_and_native_mapping(chase_256: Path) -> None:
    index = _index(chase_256)
    assert set(index["height"]) == {"246"} and set(index["width"]) == {"256"}  # 960×999 -> 256
    assert set(index["native_height"]) == {"960"} and set(index["native_width"]) == {"999"}
    assert index["split"].tolist() == ["train", "train", "test", "test"]
    for _, row in index.iterrows():
        assert read_image_any(chase_256 / row["image"]).shape == (246, 256, 3)
        for col in ("mask", "mask2", "fov"):
            small = read_image_any(chase_256 / row[col])
            native = read_image_any(chase_256 / row[f"native_{col}"])
            assert small.shape == (246, 256) and native.shape == (960, 999)
            assert set(np.unique(small)) <= {0, 255} and set(np.unique(native)) <= {0, 255}
    info = json.loads((chase_256 / "dataset.json").read_text())
    assert info["reference"] == "union" and info["resolution"] == 256


def test_union_reference_is_or_of_observers(mirror: Path, chase_256: Path) -> None:
    row = _index(chase_256).iloc[2]
    nid = row["case"].removeprefix("chase_db1_")
    first = read_mask(mirror / f"CHASE_DB1/Image_{nid}_1stHO.png")
    second = read_mask(mirror / f"CHASE_DB1/Image_{nid}_2ndHO.png")
    union = read_mask(chase_256 / row["native_mask"])
    np.testing.assert_array_equal(union, first | second)
    assert union.sum() > first.sum() and union.sum() > second.sum()
    np.testing.assert_array_equal(read_mask(chase_256 / row["native_mask2"]), second)


def test_evaluation_uses_native_masks(chase_256: Path, tmp_path: Path) -> None:
    """Native-size predictions equal to the native union reference score Dice 1."""
    index = _index(chase_256)
    test = index[index["split"] == "test"]
    for _, row in test.iterrows():
        write_prob_png(tmp_path / "probs" / f"{row['case']}.png",
                       read_mask(chase_256 / row["native_mask"]).astype(np.float32))
    table = evaluate_predictions(chase_256, tmp_path / "probs", None, 0.5, ["dice"],
                                 {"method": "m", "train_set": "t", "test_set": "chase_db1",
                                  "seed": "0"})
    assert len(table) == 2 and np.allclose(table["dice"].astype(float), 1.0)


def test_second_run_changes_nothing(chase4: Path, chase_256: Path) -> None:
    before = snapshot(chase_256)
    prepare_dataset("chase_db1", chase4, chase_256, FOV_CFG, policy=POLICY)
    assert snapshot(chase_256) == before


def test_back_to_native_removes_the_native_copies(chase4: Path, chase_256: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "chase"
    shutil.copytree(chase_256, out)
    assert len(list((out / "native").rglob("*.png"))) == 12
    index = prepare_dataset("chase_db1", chase4, out, FOV_CFG, policy=NATIVE)
    assert not list((out / "native").rglob("*.png"))
    assert set(index["height"]) == {960} and (index["native_mask"] == "").all()


def test_resize_case_known_answer() -> None:
    image = np.zeros((4, 8, 3), np.uint8)
    mask = np.zeros((4, 8), bool)
    mask[:, 4:] = True  # right half
    small, labels = resize_case(image, {"mask": mask}, 4)
    assert small.shape == (2, 4, 3) and labels["mask"].dtype == bool
    np.testing.assert_array_equal(labels["mask"], [[0, 0, 1, 1], [0, 0, 1, 1]])
    same, unchanged = resize_case(image, {"mask": mask}, None)
    assert same is image and unchanged["mask"] is mask


def test_apply_reference_and_bad_policy() -> None:
    a, b = np.array([[1, 0, 0]], bool), np.array([[0, 1, 0]], bool)
    assert apply_reference({"mask": a, "mask2": b}, "union")["mask"].tolist() == [[1, 1, 0]]
    assert apply_reference({"mask": a, "mask2": b}, "first")["mask"] is a
    assert apply_reference({"mask": a}, "union")["mask"] is a  # no second observer
    with pytest.raises(ValueError, match="data.reference"):
        PreparePolicy(reference="vote")
    with pytest.raises(ValueError, match="data.resolution"):
        PreparePolicy.from_config({"resolution": 8})
    assert PreparePolicy.from_config({"resolution": "native"}).resolution is None
