"""CHASE_DB1 (Fraz et al. 2012): 28 fundus images of 14 children, both eyes, two observers.

Official layout (``CHASEDB1.zip``, flat): ``Image_NNX.jpg``, ``Image_NNX_1stHO.png``,
``Image_NNX_2ndHO.png`` with NN = 01–14 and X = L/R. No FOV masks are shipped.
Split: ``splits/chase_db1.json`` (first 20 / last 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of the flat CHASE_DB1 layout under ``root``, one per split-file case."""
    recs = []
    for case, split in assignment.items():
        nid = native_id("chase_db1", case)
        recs.append(Record(
            case=case,
            split=split,
            image=root / f"Image_{nid}.jpg",
            mask=root / f"Image_{nid}_1stHO.png",
            mask2=root / f"Image_{nid}_2ndHO.png",
        ))
    return recs


SPEC = DatasetSpec(
    id="chase_db1",
    task="vessel",
    label_kinds=("vessel", "vessel_2nd_observer"),
    folder="CHASE_DB1",
    source=Source(
        homepage="https://researchdata.kingston.ac.uk/96/",
        # No published checksum: the first download pins it in data/checksums.lock.json.
        archives=(Archive("https://researchdata.kingston.ac.uk/96/1/CHASEDB1.zip"),),
        citation="Fraz et al., An ensemble classification-based approach applied to retinal "
                 "blood vessel segmentation, IEEE TBME 59(9), 2012",
    ),
    reader=read_layout,
)
