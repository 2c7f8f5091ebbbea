"""DRIVE (Staal et al. 2004): 40 fundus images, official 20 training / 20 test split.

Two releases are in circulation, and both are read:

- the legacy ``DRIVE.zip`` (the original Utrecht download, also in most mirrors):
  ``DRIVE/training/{images,1st_manual,mask}`` (ids 21–40) and
  ``DRIVE/test/{images,1st_manual,2nd_manual,mask}`` (ids 01–20): the test set is
  labelled by both observers;
- the current download of drive.grand-challenge.org, ``training.zip`` (``training/``, as
  above) and ``test.zip`` holding only ``test/images`` and ``test/mask``: no test labels
  (the challenge scores test predictions itself). Its 20 test cases are prepared with an
  empty ``mask`` column, predicted, and left out of scoring; for a scored test set from
  this release, use the split variant ``labelled_test/<k>`` (``data.split_variants.drive``),
  which tests on 5 of the 20 labelled training images.

The release is told apart by the test folder: ``test/images`` without ``test/1st_manual``
and ``test/2nd_manual`` is the current download; anything else is read as the legacy one,
so a legacy copy missing some labels is reported file by file. ``2nd_manual`` holds
palette GIFs with indices 0/1 (read through grey + threshold 128, see
``samlora.data.io``). Split: ``splits/drive.json`` (official; variant ``labelled_test``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import DatasetSpec, Record, Source, native_id

#: Why test cases of the current release have no label (quoted in logs and metrics).
UNLABELLED_NOTE = ("no reference label in this release (current DRIVE download, training.zip "
                   "+ test.zip; the legacy DRIVE.zip labels them)")


def is_current_release(root: Path) -> bool:
    """True when ``root`` holds the current download's test folder: ``test/images`` and
    neither ``test/1st_manual`` nor ``test/2nd_manual`` (the reader's only folder check)."""
    test = Path(root) / "test"
    return ((test / "images").is_dir() and not (test / "1st_manual").exists()
            and not (test / "2nd_manual").exists())


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of either DRIVE release under ``root``, one per split-file case.

    The folder follows the native id (21–40 ``training/``, 01–20 ``test/``); only the
    test folder ships a second observer. In the current release (see
    :func:`is_current_release`) a test case has no label files (``mask`` None).
    """
    unlabelled_test = is_current_release(root)
    recs = []
    for case, split in assignment.items():
        n = native_id("drive", case)
        sub = "training" if int(n) >= 21 else "test"
        base = root / sub
        labelled = sub == "training" or not unlabelled_test
        recs.append(Record(
            case=case,
            split=split,
            image=base / "images" / f"{n}_{sub}.tif",
            mask=base / "1st_manual" / f"{n}_manual1.gif" if labelled else None,
            mask2=base / "2nd_manual" / f"{n}_manual2.gif" if sub == "test" and labelled
            else None,
            fov=base / "mask" / f"{n}_{sub}_mask.gif",
        ))
    return recs


SPEC = DatasetSpec(
    id="drive",
    task="vessel",
    label_kinds=("vessel", "vessel_2nd_observer", "fov"),
    folder="DRIVE",
    source=Source(
        homepage="https://drive.grand-challenge.org/",
        registration=True,
        placement=("DRIVE.zip (the legacy release: test labels of both observers) or "
                   "training.zip + test.zip (the current download: no test labels, so its 20 "
                   "test cases are predicted but not scored and the test/1st_manual and "
                   "test/2nd_manual files listed below are not needed; "
                   "data.split_variants.drive: labelled_test/<k> scores 5 labelled training "
                   "images instead), or their extracted folders training/ and test/,"),
        citation="Staal et al., Ridge-based vessel segmentation in color images of the retina, "
                 "IEEE TMI 23(4), 2004",
        unlabelled=UNLABELLED_NOTE,
    ),
    reader=read_layout,
)
