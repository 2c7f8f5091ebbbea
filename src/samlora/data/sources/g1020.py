"""G1020 (Bajwa et al. 2020): 1020 fundus images, disc and cup outlined as labelme polygons.

G1020 circulates as a bundle ``G1020/{Images, Masks, ..., G1020.csv}`` (e.g. in the Kaggle
bundle ``arnavjain1/glaucoma-datasets``). The labelme JSON of each image lies beside it in
``Images/`` in one copy (as SAM2LoRA's loader reads it) and in a folder ``json/`` in
another; both are read::

    Images/image_N.jpg
    Images/image_N.json  or  json/image_N.json
                         labelme JSON: polygons labelled ``disc`` and ``cup`` (other
                         shapes are not read)

Every image has a disc: a JSON without a disc polygon, or one that rasterises to nothing,
is an error naming it. The cup is optional (said to be drawn on a subset of the images;
not confirmed against the release): a JSON without one gives an empty ``mask_cup`` cell,
and the case is left out where the cup is the target; a cup polygon that is there must
rasterise to something. No split is published: a seeded 75/25 split is
drawn once from the images found (``python -m samlora split --dataset g1020 --seed 0``).
The FOV is the whole image, as for the other disc/cup sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, LabelmePolygons
from samlora.data.layout import pick_existing
from samlora.data.registry import DatasetSpec, Record, Source, image_scanner, native_id

DISC = LabelmePolygons(("disc",))
CUP = LabelmePolygons(("cup",), optional=True)
#: Folders the JSONs lie in, in the copies in circulation (the first is reported if
#: neither holds a case's JSON).
JSON_DIRS = ("Images", "json")


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    recs = []
    for case, split in assignment.items():
        name = native_id("g1020", case)
        json_path = pick_existing(*(root / d / f"{name}.json" for d in JSON_DIRS))
        recs.append(Record(case=case, split=split, image=root / "Images" / f"{name}.jpg",
                           mask=json_path, mask_reader=DISC,
                           extra=(Label("cup", json_path, CUP),)))
    return recs


SPEC = DatasetSpec(
    id="g1020",
    task="disc_cup",
    label_kinds=("disc", "cup"),
    folder="G1020",
    source=Source(
        homepage="https://www.kaggle.com/datasets/arnavjain1/glaucoma-datasets (folder "
                 "G1020/, the bundle in circulation; paper: https://arxiv.org/abs/2006.09158)",
        placement=("the G1020 folder (Images/ with image_N.jpg, and the labelme JSONs in "
                   "Images/ or json/), or an archive holding it"),
        citation="Bajwa et al., G1020: a benchmark retinal fundus image dataset for "
                 "computer-aided glaucoma detection, IJCNN 2020",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=image_scanner("g1020", "Images"),
    extra_labels=("cup",),
    fov_default="whole",
)
