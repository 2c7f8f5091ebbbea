"""CHASE_DB1 (Fraz et al. 2012): 28 fundus images of 14 children, both eyes, two observers.

Official layout (``CHASEDB1.zip``, flat): ``Image_NNX.jpg``, ``Image_NNX_1stHO.png``,
``Image_NNX_2ndHO.png`` with NN = 01–14 and X = L/R. No FOV masks are shipped.
Split: ``splits/chase_db1.json`` (first 20 / last 8).

The dataset moved from researchdata.kingston.ac.uk/96/ to Kingston University's research
repository (record "CHASE_DB1 retinal vessel reference dataset"), whose file links sit
behind a browser check that plain HTTP clients do not pass. The download is still tried;
when the server answers with an HTML page or refuses it, the download step stops and says
to fetch ``CHASEDB1.zip`` from :data:`PAGE` in a browser and put it in ``raw/chase_db1/``.
No hash is published: the first real archive is pinned in the lock file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id

#: The dataset's record in Kingston University's research repository.
PAGE = ("https://researchinnovation.kingston.ac.uk/en/datasets/"
        "chasedb1-retinal-vessel-reference-dataset-4/")
#: The record's archive (behind the repository's browser check).
ARCHIVE_URL = "https://researchinnovation.kingston.ac.uk/files/40659508/CHASEDB1.zip"


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
        homepage=PAGE,
        # No published checksum: the first archive downloaded (or placed) is pinned in
        # data/checksums.lock.json; an HTML page is never taken for it.
        archives=(Archive(ARCHIVE_URL),),
        citation="Fraz et al., An ensemble classification-based approach applied to retinal "
                 "blood vessel segmentation, IEEE TBME 59(9), 2012",
    ),
    reader=read_layout,
)
