"""PAPILA (Kovalyk et al. 2022): 488 fundus images of 244 patients, disc and cup contours.

The release is one figshare file (:data:`ARCHIVE`, a zip although its URL has no suffix:
it is extracted by content) holding one top folder, :data:`TOP`, with::

    FundusImages/RETNNN{OD,OS}.jpg
    ExpertsSegmentations/Contours/RETNNN{OD,OS}_{disc,cup}_exp{1,2}.txt
    ClinicalData/, HelpCode/, ...

Each contour file lists ``x y`` vertex pairs. Expert 1 is the reference (disc ``mask``,
cup ``mask_cup``); expert 2 is the second observer (disc ``mask2``, cup ``mask_cup2``).
Every image shows both structures, so a contour that rasterises to nothing is an error.
The archive also holds 11 macOS copies named with `` 2`` before the suffix (e.g.
``RET062OD_cup_exp2 2.txt``); the reader names only the original files and the scanner
skips any such copy. ``HelpCode/`` (the authors' code) is not read: whether it holds
cross-validation folds, and in which format, has not been checked against the archive, so
no fold variant is offered; a seeded 75/25 split is drawn once from the images found. The
FOV is the whole image, as for the other disc/cup sets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import ContourText, Label
from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id

log = logging.getLogger(__name__)

IMAGES = Path("FundusImages")
CONTOURS = Path("ExpertsSegmentations") / "Contours"
#: The archive's top folder (found by the layout search; named here for reference).
TOP = "PapilaDB-PAPILA-17f8fa7746adb20275b5b6a0d99dc9dfe3007e9f"
ARCHIVE = Archive("https://figshare.com/ndownloader/files/35013982",
                  sha256="15b053dff496bc8e53eb8a8d0707ef73ba3d56c988eea92b65832c9c82852a7d",
                  name="PAPILA.zip")
#: A macOS copy: `` <n>`` before the suffix (``RET062OD 2.jpg``, ``..._exp2 2.txt``).
_COPY = re.compile(r" \d+$")


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


def scan(root: Path) -> list[str]:
    """``papila_<stem>`` of the fundus images under ``root``, sorted, macOS copies skipped."""
    cases = []
    for p in sorted((Path(root) / IMAGES).glob("*.jpg")):
        if _COPY.search(p.stem) or p.name.startswith("._"):
            log.info("%s: a macOS copy of another image, not a case of its own; skipped", p)
            continue
        cases.append(f"papila_{p.stem}")
    return cases


SPEC = DatasetSpec(
    id="papila",
    task="disc_cup",
    label_kinds=("disc", "disc_2nd_observer", "cup", "cup_2nd_observer"),
    folder="PAPILA",
    source=Source(
        homepage="https://doi.org/10.1038/s41597-022-01388-1 (data descriptor; the data "
                 "are the figshare file https://figshare.com/ndownloader/files/35013982)",
        archives=(ARCHIVE,),
        citation="Kovalyk et al., PAPILA: dataset with fundus images and clinical data of "
                 "both eyes of the same patient for glaucoma assessment, Sci Data 9, 2022",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=scan,
    extra_labels=("cup", "cup2"),
    fov_default="whole",
)
