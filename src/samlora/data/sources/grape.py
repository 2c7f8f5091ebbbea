"""GRAPE (Huang et al. 2023): glaucoma follow-up fundus images with disc/cup polygons.

Layout assumed from the data descriptor (check every folder and label name against the
release)::

    ROI images/<id>.jpg     crops around the optic nerve head
    json/<id>.json          labelme JSON on the ROI image: polygons ``disc`` and ``cup``

Label names are matched case-insensitively, with the common abbreviations (``OD``/``OC``).
No split is published: a seeded 75/25 split is drawn once from the images found. The ROI
crop is the dataset's region of interest, so the FOV is the whole (cropped) image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, LabelmePolygons
from samlora.data.registry import DatasetSpec, Record, Source, image_scanner, native_id

IMAGES = "ROI images"
JSONS = "json"
DISC = LabelmePolygons(("disc", "od", "optic disc"))
CUP = LabelmePolygons(("cup", "oc", "optic cup"))


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    recs = []
    for case, split in assignment.items():
        n = native_id("grape", case)
        json_path = root / JSONS / f"{n}.json"
        recs.append(Record(case=case, split=split, image=root / IMAGES / f"{n}.jpg",
                           mask=json_path, mask_reader=DISC,
                           extra=(Label("cup", json_path, CUP),)))
    return recs


SPEC = DatasetSpec(
    id="grape",
    task="disc_cup",
    label_kinds=("disc", "cup"),
    folder="GRAPE",
    source=Source(
        homepage="https://doi.org/10.1038/s41597-023-02424-4 (GRAPE data descriptor; data "
                 "on figshare) (check)",
        placement="the GRAPE archive, or its extracted folder holding 'ROI images/' and json/",
        citation="Huang et al., GRAPE: a multi-modal dataset of longitudinal follow-up "
                 "visual field and fundus images for glaucoma management, Sci Data 10, 2023",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=image_scanner("grape", IMAGES),
    extra_labels=("cup",),
    fov_default="whole",
)
