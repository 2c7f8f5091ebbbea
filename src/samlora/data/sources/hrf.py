"""HRF (Budai et al. 2013): 45 fundus images, 15 healthy (h), 15 DR (dr), 15 glaucoma (g).

Official layout (``all.zip``): ``images/NN_C.jpg`` (3504×2336 JPEG; the DR images ship as
``.JPG``), ``manual1/NN_C.tif`` (vessel label), ``mask/NN_C_mask.tif`` (FOV, RGB) with
NN = 01–15 and C in h, dr, g. One observer; the FOV masks are official.
Split: ``splits/hrf.json`` (first 5 of each category train, 10 of each test).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.layout import pick_existing
from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id

#: SHA-256 of the published ``all.zip``.
ALL_ZIP_SHA256 = "a914d02cda161b7f33f25d0397c276d50e9a6cbc705e9b364a54f0adafed57e4"


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of the HRF layout under ``root``, one per split-file case."""
    recs = []
    for case, split in assignment.items():
        n = native_id("hrf", case)  # e.g. "01_dr"
        recs.append(Record(
            case=case,
            split=split,
            # all.zip names the DR images .JPG and the others .jpg: accept either.
            image=pick_existing(root / "images" / f"{n}.jpg", root / "images" / f"{n}.JPG"),
            mask=root / "manual1" / f"{n}.tif",
            fov=root / "mask" / f"{n}_mask.tif",
        ))
    return recs


SPEC = DatasetSpec(
    id="hrf",
    task="vessel",
    label_kinds=("vessel", "fov"),
    folder="HRF",
    source=Source(
        homepage="https://www5.cs.fau.de/research/data/fundus-images/",
        archives=(Archive("https://www5.cs.fau.de/fileadmin/research/datasets/fundus-images/"
                          "all.zip", ALL_ZIP_SHA256),),
        citation="Budai, Bock, Maier, Hornegger and Michelson, Robust vessel segmentation in "
                 "fundus images, International Journal of Biomedical Imaging, 2013",
    ),
    reader=read_layout,
)
