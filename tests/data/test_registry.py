"""Registry: specs, readers, and the unknown-name error."""

from __future__ import annotations

from pathlib import Path

import pytest

from samlora.data.errors import UnknownDatasetError
from samlora.data.registry import dataset_ids, describe_layout, get_dataset, missing_files


def test_known_ids() -> None:
    assert {"drive", "chase_db1"} <= set(dataset_ids())


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(KeyError) as info:
        get_dataset("stare_typo")
    assert isinstance(info.value, UnknownDatasetError)
    msg = str(info.value)
    assert "stare_typo" in msg and "drive" in msg and "chase_db1" in msg
    assert not msg.startswith('"')  # plain message, not KeyError's quoted repr


@pytest.mark.parametrize(("name", "n_train", "n_test", "n_files"),
                         [("drive", 20, 20, 140), ("chase_db1", 20, 8, 84)])
def test_reader_finds_every_mirror_file(mirror: Path, name: str, n_train: int, n_test: int,
                                        n_files: int) -> None:
    spec = get_dataset(name)
    recs = spec.records(mirror / spec.folder)
    assert sum(r.split == "train" for r in recs) == n_train
    assert sum(r.split == "test" for r in recs) == n_test
    assert sum(len(r.files()) for r in recs) == n_files
    assert missing_files(recs) == []
    assert all(r.case.startswith(f"{name}_") for r in recs)


def test_drive_records() -> None:
    spec = get_dataset("drive")
    recs = {r.case: r for r in spec.records(Path("R"))}
    assert recs["drive_21"].image == Path("R/training/images/21_training.tif")
    assert recs["drive_21"].mask2 is None
    assert recs["drive_01"].mask2 == Path("R/test/2nd_manual/01_manual2.gif")
    assert recs["drive_01"].fov == Path("R/test/mask/01_test_mask.gif")
    assert spec.source.registration and not spec.source.archives


def test_chase_split_is_first20_last8() -> None:
    spec = get_dataset("chase_db1")
    recs = spec.records(Path("R"))
    train = [r.case for r in recs if r.split == "train"]
    test = [r.case for r in recs if r.split == "test"]
    assert train[0] == "chase_db1_01L" and train[-1] == "chase_db1_10R"
    assert test == [f"chase_db1_{n}{e}" for n in range(11, 15) for e in "LR"]
    assert all(r.fov is None for r in recs)
    assert "first20_last8" in spec.split_convention
    assert spec.source.archives[0].filename == "CHASEDB1.zip"
    assert spec.source.archives[0].sha256 is None


def test_describe_layout_names_every_folder() -> None:
    text = describe_layout(get_dataset("drive"), Path("raw/drive"))
    for part in ("training/images/21_training.tif", "40_training.tif", "test/2nd_manual/",
                 "training/mask/", "test/1st_manual/"):
        assert part in text
