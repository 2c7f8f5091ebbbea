"""Kvasir-SEG (Jha et al. 2020): 1000 colonoscopy images with polyp masks.

Official layout (``kvasir-seg.zip`` holds ``Kvasir-SEG/``): ``images/<id>.jpg``,
``masks/<id>.jpg`` (JPEG masks: near-binary with compression noise, thresholded at 128 by
:func:`samlora.data.io.read_mask`) and ``kavsir_bboxes.json`` (the dataset's spelling).
The FOV is the whole image. Split: ``splits/kvasir_seg.json`` (seeded 880 / 120).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import Archive, DatasetSpec, Record, Source, image_scanner, native_id

#: SHA-256 of the published ``kvasir-seg.zip``.
KVASIR_SEG_ZIP_SHA256 = "03b30e21d584e04facf49397a2576738fd626815771afbbf788f74a7153478f7"


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of the Kvasir-SEG layout under ``root``, one per split-file case."""
    recs = []
    for case, split in assignment.items():
        n = native_id("kvasir_seg", case)
        recs.append(Record(case=case, split=split, image=root / "images" / f"{n}.jpg",
                           mask=root / "masks" / f"{n}.jpg"))
    return recs


SPEC = DatasetSpec(
    id="kvasir_seg",
    task="polyp",
    label_kinds=("polyp",),
    folder="Kvasir-SEG",
    source=Source(
        homepage="https://datasets.simula.no/kvasir-seg/",
        archives=(Archive("https://datasets.simula.no/downloads/kvasir-seg.zip",
                          KVASIR_SEG_ZIP_SHA256),),
        citation="Jha et al., Kvasir-SEG: A segmented polyp dataset, MultiMedia Modeling "
                 "(MMM), 2020",
    ),
    reader=read_layout,
    labels=(("background", 0), ("polyp", 1)),
    scan=image_scanner("kvasir_seg", "images"),
    fov_default="whole",
)
