"""G1020 (Bajwa et al. 2020): 1020 fundus images, disc and cup outlined as labelme polygons.

Layout of the public release (check)::

    Images/image_N.jpg
    Images/image_N.json     labelme JSON: polygons labelled ``disc`` and, on a subset of
                            the images, ``cup``

Every image must have a disc polygon (a JSON without one is an error naming it); a cup is
optional (empty ``mask_cup`` cell where none is drawn). No split is published: a seeded
75/25 split is drawn once from the images found (``python -m samlora split --dataset
g1020 --seed 0``). The FOV is the whole image, as for the other disc/cup sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, LabelmePolygons
from samlora.data.registry import DatasetSpec, Record, Source, image_scanner, native_id

DISC = LabelmePolygons(("disc",))
CUP = LabelmePolygons(("cup",), optional=True)


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    recs = []
    for case, split in assignment.items():
        base = root / "Images" / native_id("g1020", case)
        json_path = base.with_suffix(".json")
        recs.append(Record(case=case, split=split, image=base.with_suffix(".jpg"),
                           mask=json_path, mask_reader=DISC,
                           extra=(Label("cup", json_path, CUP),)))
    return recs


SPEC = DatasetSpec(
    id="g1020",
    task="disc_cup",
    label_kinds=("disc", "cup"),
    folder="G1020",
    source=Source(
        homepage="https://arxiv.org/abs/2006.09158 (G1020 release page of DFKI) (check)",
        placement="the G1020 archive, or its extracted folder holding Images/",
        citation="Bajwa et al., G1020: a benchmark retinal fundus image dataset for "
                 "computer-aided glaucoma detection, IJCNN 2020",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=image_scanner("g1020", "Images"),
    extra_labels=("cup",),
    fov_default="whole",
)
