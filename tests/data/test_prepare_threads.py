"""prepare_dataset's worker threads when one case fails to decode.

Eight real DRIVE cases (a subset, allowed) with one image truncated: its header reads
(so the preflight passes) but its pixels do not, inside a worker thread while the other
threads encode and write. prepare must raise the reader's error naming the file, stop
the queued cases, and leave no completion marker (index.csv, dataset.json) and no
partial file; the PNGs already written are whole (atomic writes) and are reused by the
next run, which completes once the image is repaired.

DRIVE's own TIFFs keep their header at the end of the file, where a truncation fails the
preflight instead: the image is rewritten as an uncompressed TIFF with its header first,
same pixels, before it is cut.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from samlora.data.errors import ImageReadError
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset

from .conftest import FOV_CFG, snapshot

TRAIN = ("21", "22", "23", "24", "25", "26")
TEST = ("01", "02")
SUBSET = PreparePolicy(allow_subset=True)
WORKERS = 3


def truncate_pixels(tif: Path) -> bytes:
    """Rewrite ``tif`` with its header first, then cut off its last third; returns the
    rewritten (whole) bytes."""
    with Image.open(tif) as im:
        im.load()
        im.save(tif, format="TIFF", compression="raw")  # header and IFD at the start
    whole = tif.read_bytes()
    tif.write_bytes(whole[: len(whole) * 2 // 3])
    with Image.open(tif) as im:
        assert im.size == (565, 584)  # the header still reads
    return whole


def _all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_a_corrupt_image_in_a_worker_thread(drive_subset, tmp_path: Path) -> None:
    root = drive_subset((*TEST, *TRAIN))
    bad = root / "training/images/21_training.tif"  # drive_21: the first case submitted
    good = truncate_pixels(bad)
    out = tmp_path / "drive"
    with pytest.raises(ImageReadError, match=r"21_training\.tif") as info:
        prepare_dataset("drive", root, out, FOV_CFG, workers=WORKERS, policy=SUBSET)
    assert str(bad) in str(info.value) and "truncated" in str(info.value)

    after = snapshot(out)
    time.sleep(0.5)
    assert snapshot(out) == after  # no worker thread writes after prepare has returned
    assert not (out / "index.csv").exists() and not (out / "dataset.json").exists()
    files = _all_files(out)
    assert not [p for p in files if ".tmp" in p.name or p.suffix != ".png"], files
    for path in files:  # every file written is whole
        with Image.open(path) as im:
            im.load()
    written = {p.stem for p in (out / "images").glob("*.png")} if (out / "images").is_dir() \
        else set()
    assert "drive_21" not in written
    # queued cases were cancelled: some cases of the 8 were never started
    assert len(written) < len(TRAIN) + len(TEST) - 1, sorted(written)

    bad.write_bytes(good)  # repaired: the next run completes
    index = prepare_dataset("drive", root, out, FOV_CFG, workers=WORKERS, policy=SUBSET)
    assert sorted(index["case"]) == sorted(f"drive_{n}" for n in (*TEST, *TRAIN))
    assert (out / "index.csv").is_file() and (out / "dataset.json").is_file()


def test_a_failed_threaded_rerun_withdraws_the_old_index(drive_subset, tmp_path: Path) -> None:
    """A complete folder whose rerun changes a label, then fails: not complete any more."""
    root = drive_subset((*TEST, *TRAIN))
    out = tmp_path / "drive"
    prepare_dataset("drive", root, out, FOV_CFG, workers=WORKERS, policy=SUBSET)
    assert (out / "index.csv").is_file()
    label = root / "test/1st_manual/01_manual1.gif"  # the last-but-one case submitted
    with Image.open(label) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(label)
    truncate_pixels(root / "test/images/02_test.tif")  # the last case submitted
    with pytest.raises(ImageReadError, match=r"02_test\.tif"):
        prepare_dataset("drive", root, out, FOV_CFG, workers=WORKERS, policy=SUBSET)
    assert not (out / "index.csv").exists() and not (out / "dataset.json").exists()
    assert not [p for p in _all_files(out) if ".tmp" in p.name]


def test_an_unchanged_folder_keeps_its_index_when_a_rerun_fails(drive_subset,
                                                                 tmp_path: Path) -> None:
    """Nothing rewritten, nothing withdrawn: the old index still describes every file."""
    root = drive_subset((*TEST, *TRAIN))
    out = tmp_path / "drive"
    prepare_dataset("drive", root, out, FOV_CFG, workers=WORKERS, policy=SUBSET)
    before = snapshot(out)
    copy = tmp_path / "DRIVE"
    shutil.copytree(root, copy)
    truncate_pixels(copy / "test/images/02_test.tif")
    with pytest.raises(ImageReadError, match=r"02_test\.tif"):
        prepare_dataset("drive", copy, out, FOV_CFG, workers=WORKERS, policy=SUBSET)
    assert snapshot(out) == before
    index = pd.read_csv(out / "index.csv", dtype=str, keep_default_na=False)
    assert len(index) == len(TRAIN) + len(TEST)
