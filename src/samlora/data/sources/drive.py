"""DRIVE (Staal et al. 2004): 40 fundus images, official 20 training / 20 test split.

Official layout: ``training/{images,1st_manual,mask}`` (ids 21–40) and
``test/{images,1st_manual,2nd_manual,mask}`` (ids 01–20). ``2nd_manual`` holds palette
GIFs with indices 0/1 (read through grey + threshold 128, see ``samlora.data.io``).
Split: ``splits/drive.json`` (official).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import DatasetSpec, Record, Source, native_id


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of the official DRIVE layout under ``root``, one per split-file case.

    The folder follows the native id (21–40 ``training/``, 01–20 ``test/``); only the
    test folder ships a second observer.
    """
    recs = []
    for case, split in assignment.items():
        n = native_id("drive", case)
        sub = "training" if int(n) >= 21 else "test"
        base = root / sub
        recs.append(Record(
            case=case,
            split=split,
            image=base / "images" / f"{n}_{sub}.tif",
            mask=base / "1st_manual" / f"{n}_manual1.gif",
            mask2=base / "2nd_manual" / f"{n}_manual2.gif" if sub == "test" else None,
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
        placement=("the official archives (training.zip and test.zip, or DRIVE.zip), or the "
                   "extracted folders training/ and test/"),
        citation="Staal et al., Ridge-based vessel segmentation in color images of the retina, "
                 "IEEE TMI 23(4), 2004",
    ),
    reader=read_layout,
)
