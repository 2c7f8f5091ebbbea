"""IDRiD, segmentation part (Porwal et al. 2018): 81 fundus images, optic disc masks.

Official layout (``A. Segmentation.zip`` from IEEE DataPort, after registration)::

    A. Segmentation/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_NN.jpg
    A. Segmentation/2. All Segmentation Groundtruths/{a. Training Set,b. Testing Set}/
        5. Optic Disc/IDRiD_NN_OD.tif

Only the optic disc is used. The disc is drawn in pure red (255, 0, 0) on black, which
reads as grey 76: the loaders of SAM2LoRA (grey, then a threshold half-way between the
map's minimum and maximum) and of other projects (grey > 0) rely on that. Copies store
the TIFFs as RGB, palette or grey, so :class:`~samlora.data.labels.AnyChannel` reads RGB
and palette files by channel (≥ 128, a palette through its colours) and grey ones by
value > 0. Every image shows the disc, so a mask that decodes empty is an error naming
the file (:data:`samlora.data.multilabel.SHOWN_IN_EVERY_IMAGE`). As for the other
disc/cup sets the FOV is the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import AnyChannel
from samlora.data.registry import DatasetSpec, Record, Source, native_id

TOP = "A. Segmentation"
SUBSET = {"train": "a. Training Set", "test": "b. Testing Set"}


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root`` (the folder holding ``A. Segmentation/``)."""
    recs = []
    for case, split in assignment.items():
        name = f"IDRiD_{native_id('idrid', case)}"
        recs.append(Record(
            case=case, split=split,
            image=root / TOP / "1. Original Images" / SUBSET[split] / f"{name}.jpg",
            mask=(root / TOP / "2. All Segmentation Groundtruths" / SUBSET[split]
                  / "5. Optic Disc" / f"{name}_OD.tif"),
            mask_reader=AnyChannel(),
        ))
    return recs


SPEC = DatasetSpec(
    id="idrid",
    task="disc_cup",
    label_kinds=("disc",),
    folder="IDRiD",
    source=Source(
        homepage="https://idrid.grand-challenge.org/",
        registration=True,
        placement=("the segmentation archive (A. Segmentation.zip, from IEEE DataPort), or "
                   "its extracted folder 'A. Segmentation/'"),
        citation="Porwal et al., Indian Diabetic Retinopathy Image Dataset (IDRiD): a "
                 "database for diabetic retinopathy screening research, Data 3(3), 2018",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    fov_default="whole",
)
