"""ORIGA (Zhang et al. 2010): 650 fundus images with semi-automatic disc and cup maps.

The SiMES release was withdrawn; the copy that circulates (e.g. on Kaggle (check)) has::

    Images/NNN.jpg                          (NNN = 001-650)
    Semi-automatic-annotations/NNN.mat      variable ``mask``: 0 background, 1 disc rim,
                                            2 cup (check)

There is no download URL to verify, so the user places the folder. Disc = values 1 and 2,
cup = value 2. No split is published: ``splits/origa.json`` holds a seeded 75/25 split of
the ids 001-650, drawn once. The FOV is the whole image, as for the other disc/cup sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, MatMap
from samlora.data.registry import DatasetSpec, Record, Source, image_scanner, native_id

VARIABLE = "mask"
DISC_VALUES = (1, 2)
CUP_VALUES = (2,)


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    recs = []
    for case, split in assignment.items():
        n = native_id("origa", case)
        mat = root / "Semi-automatic-annotations" / f"{n}.mat"
        recs.append(Record(case=case, split=split, image=root / "Images" / f"{n}.jpg",
                           mask=mat, mask_reader=MatMap(VARIABLE, DISC_VALUES),
                           extra=(Label("cup", mat, MatMap(VARIABLE, CUP_VALUES)),)))
    return recs


SPEC = DatasetSpec(
    id="origa",
    task="disc_cup",
    label_kinds=("disc", "cup"),
    folder="ORIGA",
    source=Source(
        homepage="https://www.kaggle.com/datasets (search 'ORIGA'; the SiMES release was "
                 "withdrawn) (check)",
        placement="the ORIGA folder holding Images/ and Semi-automatic-annotations/",
        citation="Zhang et al., ORIGA-light: an online retinal fundus image database for "
                 "glaucoma analysis and research, IEEE EMBC 2010",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=image_scanner("origa", "Images"),
    extra_labels=("cup",),
    fov_default="whole",
)
