"""GRAPE (Huang et al. 2023): glaucoma follow-up fundus images with disc/cup polygons.

The release is a figshare collection (doi 10.6084/m9.figshare.c.6406319, CC BY 4.0, no
registration) of separate files: ``ROI images.rar`` (crops around the optic nerve head),
``json.rar`` (their outlines), ``CFPs.rar`` (the full colour fundus photographs), a RAR of
the outlines drawn on the crops, and an xlsx of visual fields and clinical data. samlora
needs the first two; placed side by side in ``raw/grape/`` the archives are extracted into
one folder (an archive without a top folder of its own goes into a folder of its name)::

    ROI images/<id>.jpg     the crop
    json/<id>.json          labelme JSON: polygons labelled OD (disc) and OC (cup)

The polygons are in the crop's pixel coordinates (the crop, not the CFP, is the image);
other shapes in the files are ignored. This is the layout SAM2LoRA's loader reads
(``dataloader/grape.py`` in sayanmndl21/SAM2LoRA: ``ROI images/*.jpg`` with
``json/<stem>.json``, shapes ``OD`` and ``OC`` drawn on the ROI image's size). Label names
are matched case-insensitively (``disc``/``cup`` accepted too). No split is published: a
seeded 75/25 split is drawn once from the images found (``python -m samlora split
--dataset grape --seed 0``, after a first download step has extracted the archives). The
crop is the dataset's region of interest, so the FOV is the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, LabelmePolygons
from samlora.data.registry import DatasetSpec, Record, Source, image_scanner, native_id

IMAGES = "ROI images"
JSONS = "json"
DISC = LabelmePolygons(("od", "disc", "optic disc"))
CUP = LabelmePolygons(("oc", "cup", "optic cup"))


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
        homepage="https://doi.org/10.6084/m9.figshare.c.6406319 (figshare collection of the "
                 "data descriptor, doi 10.1038/s41597-023-02424-4)",
        placement=("'ROI images.rar' and json.rar from the GRAPE figshare collection "
                   "(CFPs.rar, the other RAR and the xlsx are not needed), or their "
                   "extracted folders 'ROI images/' and json/"),
        citation="Huang et al., GRAPE: a multi-modal dataset of longitudinal follow-up "
                 "visual field and fundus images for glaucoma management, Sci Data 10, 520, "
                 "2023",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=image_scanner("grape", IMAGES),
    extra_labels=("cup",),
    fov_default="whole",
)
