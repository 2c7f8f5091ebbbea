"""PAPILA (Kovalyk et al. 2022): 488 fundus images of 244 patients, disc and cup contours.

Layout of the figshare release (inside one top folder)::

    FundusImages/RETNNN{OD,OS}.jpg
    ExpertsSegmentations/Contours/RETNNN{OD,OS}_{disc,cup}_exp{1,2}.txt

Each contour file lists ``x y`` vertex pairs. Expert 1 is the reference (disc ``mask``,
cup ``mask_cup``); expert 2 is the second observer (disc ``mask2``, cup ``mask_cup2``).
The figshare file URL is not pinned here (check), so the user places the download. No
split is published: a seeded 75/25 split is drawn once from the images found. The FOV is
the whole image, as for the other disc/cup sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import ContourText, Label
from samlora.data.registry import DatasetSpec, Record, Source, image_scanner, native_id

IMAGES = Path("FundusImages")
CONTOURS = Path("ExpertsSegmentations") / "Contours"


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case."""
    recs = []
    for case, split in assignment.items():
        n = native_id("papila", case)
        c = root / CONTOURS
        recs.append(Record(
            case=case, split=split, image=root / IMAGES / f"{n}.jpg",
            mask=c / f"{n}_disc_exp1.txt", mask_reader=ContourText(),
            mask2=c / f"{n}_disc_exp2.txt", mask2_reader=ContourText(),
            extra=(Label("cup", c / f"{n}_cup_exp1.txt", ContourText()),
                   Label("cup2", c / f"{n}_cup_exp2.txt", ContourText())),
        ))
    return recs


SPEC = DatasetSpec(
    id="papila",
    task="disc_cup",
    label_kinds=("disc", "disc_2nd_observer", "cup", "cup_2nd_observer"),
    folder="PAPILA",
    source=Source(
        homepage="https://doi.org/10.6084/m9.figshare.14798004 (check)",
        placement="the PAPILA archive from figshare, or its extracted folder holding "
                  "FundusImages/ and ExpertsSegmentations/",
        citation="Kovalyk et al., PAPILA: dataset with fundus images and clinical data of "
                 "both eyes of the same patient for glaucoma assessment, Sci Data 9, 2022",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=image_scanner("papila", IMAGES),
    extra_labels=("cup", "cup2"),
    fov_default="whole",
)
