"""DRIVE (Staal et al. 2004): 40 fundus images, official 20 training / 20 test split.

Official layout: ``training/{images,1st_manual,mask}`` (ids 21–40) and
``test/{images,1st_manual,2nd_manual,mask}`` (ids 01–20). ``2nd_manual`` holds palette
GIFs with indices 0/1 (read through grey + threshold 128, see ``samlora.data.io``).
"""

from __future__ import annotations

from pathlib import Path

from samlora.data.registry import DatasetSpec, Record, Source

TRAIN_IDS = tuple(f"{i:02d}" for i in range(21, 41))
TEST_IDS = tuple(f"{i:02d}" for i in range(1, 21))


def read_layout(root: Path) -> list[Record]:
    """Expected records of the official DRIVE layout under ``root`` (20 train, 20 test)."""
    recs = []
    for split, sub, ids in (("train", "training", TRAIN_IDS), ("test", "test", TEST_IDS)):
        base = root / sub
        for n in ids:
            recs.append(Record(
                case=f"drive_{n}",
                split=split,
                image=base / "images" / f"{n}_{sub}.tif",
                mask=base / "1st_manual" / f"{n}_manual1.gif",
                mask2=base / "2nd_manual" / f"{n}_manual2.gif" if split == "test" else None,
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
    split_convention="official: training/ (ids 21-40) = train, test/ (ids 01-20) = test; "
                     "1st_manual is the reference, 2nd_manual (test only) the human baseline",
)
