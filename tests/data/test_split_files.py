"""Committed split files: format checks, seeded drawing, variants, and disagreement with data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from samlora.data.download import fetch_dataset
from samlora.data.errors import MissingFilesError
from samlora.data.layout import check_layout
from samlora.data.registry import dataset_ids, get_dataset
from samlora.data.split_files import (
    SPLITS_DIR,
    SplitFileError,
    load_split,
    parse_split,
    seeded_split,
    write_seeded_split,
)

OFFICIAL_COUNTS = {"drive": (20, 0, 20), "chase_db1": (20, 0, 8), "stare": (10, 0, 10),
                   "hrf": (15, 0, 30), "fives": (600, 0, 200), "kvasir_seg": (880, 0, 120),
                   "sl_ssdd": (928, 0, 232)}


@pytest.mark.parametrize("name", sorted(OFFICIAL_COUNTS))
def test_committed_split_counts(name: str) -> None:
    split = load_split(name)
    counts = split.counts()
    assert (counts.get("train", 0), counts.get("val", 0), counts.get("test", 0)) \
        == OFFICIAL_COUNTS[name]
    assert split.path == SPLITS_DIR / f"{name}.json" and split.convention and split.description
    assert len(set(split.cases)) == sum(OFFICIAL_COUNTS[name])


def test_every_committed_file_parses_and_names_a_dataset() -> None:
    for path in sorted(SPLITS_DIR.glob("*.json")):
        split = parse_split(path)
        assert split.dataset == path.stem
        assert split.dataset in dataset_ids()


def test_named_conventions() -> None:
    chase = load_split("chase_db1")
    assert chase.splits["test"] == tuple(f"chase_db1_{n}{e}" for n in range(11, 15) for e in "LR")
    stare = load_split("stare")
    assert stare.splits["train"][-1] == "stare_0139" and stare.splits["test"][0] == "stare_0162"
    hrf = load_split("hrf")
    assert {c.split("_", 2)[1] for c in hrf.splits["train"]} == {"01", "02", "03", "04", "05"}
    ssdd = load_split("sl_ssdd")
    assert all(c[-1] in "19" for c in ssdd.splits["test"])


def test_leave_one_out_variant() -> None:
    stare = load_split("stare")
    fold = stare.assignment("leave_one_out/3")
    assert sorted(fold) == sorted(stare.cases)
    assert [c for c, s in fold.items() if s == "test"] == [sorted(stare.cases)[3]]
    with pytest.raises(SplitFileError, match="out of range"):
        stare.assignment("leave_one_out/20")
    with pytest.raises(SplitFileError, match="unknown split variant"):
        load_split("drive").assignment("leave_one_out/0")  # DRIVE's file allows none


def test_seeded_split_is_deterministic_and_75_25() -> None:
    cases = [f"x_{i:03d}" for i in range(101)]
    a, b = seeded_split(cases, seed=0), seeded_split(list(reversed(cases)), seed=0)
    assert a == b
    assert len(a["test"]) == 25 and len(a["train"]) == 76
    assert set(a["train"]).isdisjoint(a["test"])
    assert seeded_split(cases, seed=1) != a


def test_write_seeded_split_refuses_to_overwrite(tmp_path: Path) -> None:
    cases = [f"kvasir_seg_{i}" for i in range(8)]
    path = write_seeded_split("kvasir_seg", cases, seed=3, splits_dir=tmp_path)
    written = load_split("kvasir_seg", splits_dir=tmp_path)
    assert written.seed == 3 and written.convention == "seeded_75_25"
    assert written.counts() == {"train": 6, "test": 2}
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        write_seeded_split("kvasir_seg", cases, seed=4, splits_dir=tmp_path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"dataset": "drive", "convention": "c", "description": "d", "splits": '
     '{"train": ["drive_01"], "dev": ["drive_02"]}}', "unknown split name"),
    ('{"dataset": "drive", "convention": "c", "description": "d", "splits": '
     '{"train": ["drive_01"], "test": ["drive_01"]}}', "listed in splits.train and splits.test"),
    ('{"dataset": "drive", "convention": "c", "splits": {"train": ["drive_01"]}}',
     "missing key 'description'"),
    ('{"dataset": "drive", "convention": "c", "description": "d", "splits": '
     '{"train": ["stare_0001"]}}', "do not start with 'drive_'"),
])
def test_malformed_split_file_names_file_and_key(tmp_path: Path, content: str,
                                                 message: str) -> None:
    path = tmp_path / "drive.json"
    path.write_text(content)
    with pytest.raises(SplitFileError) as info:
        load_split("drive", splits_dir=tmp_path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_split_file_says_how_to_draw_one(tmp_path: Path) -> None:
    with pytest.raises(SplitFileError, match="python -m samlora split --dataset origa"):
        load_split("origa", splits_dir=tmp_path)


def test_split_case_missing_from_data_names_split_file_and_case(mirror: Path,
                                                                tmp_path: Path) -> None:
    """A real STARE copy lacking one image: the split file's case is reported."""
    copy = tmp_path / "STARE"
    shutil.copytree(mirror / "STARE", copy)
    (copy / "stare-images" / "im0082.ppm").unlink()
    with pytest.raises(MissingFilesError) as info:
        check_layout(get_dataset("stare"), copy)
    msg = str(info.value)
    assert "stare_0082" in msg and str(SPLITS_DIR / "stare.json") in msg
    assert "im0082.ppm" in msg and "data.allow_subset" in msg


def test_image_without_mask_is_named_even_in_a_subset(mirror: Path, tmp_path: Path) -> None:
    copy = tmp_path / "STARE"
    shutil.copytree(mirror / "STARE", copy)
    (copy / "labels-vk" / "im0163.vk.ppm").unlink()
    with pytest.raises(MissingFilesError, match=r"labels-vk/im0163\.vk\.ppm"):
        check_layout(get_dataset("stare"), copy, allow_subset=True)


def test_empty_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "STARE").mkdir()
    with pytest.raises(MissingFilesError, match=r"STARE is empty"):
        fetch_dataset("stare", tmp_path / "raw", tmp_path, tmp_path / "lock.json")


def test_kvasir_mirror_subset_is_explicit(mirror: Path, tmp_path: Path) -> None:
    """The mirror holds 100 of the split file's 1000 Kvasir-SEG ids."""
    with pytest.raises(MissingFilesError, match="names 900 of 1000 case"):
        fetch_dataset("kvasir_seg", tmp_path / "raw", mirror, tmp_path / "lock.json")
    assert not (tmp_path / "raw/kvasir_seg/source.json").exists()
    fetch_dataset("kvasir_seg", tmp_path / "raw", mirror, tmp_path / "lock.json",
                  allow_subset=True)
    source = json.loads((tmp_path / "raw/kvasir_seg/source.json").read_text())
    assert source["cases"] == 100 and source["subset"]["present"] == 100
    assert source["subset"]["of"] == 1000
    counts = source["subset"]["counts"]
    assert counts["train"] + counts["test"] == 100 and counts["test"] > 0
