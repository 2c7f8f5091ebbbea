"""CHASE_DB1 (Fraz et al. 2012): 28 fundus images of 14 children, both eyes, two observers.

Official layout (``CHASEDB1.zip``, flat): ``Image_NNX.jpg``, ``Image_NNX_1stHO.png``,
``Image_NNX_2ndHO.png`` with NN = 01–14 and X = L/R. No FOV masks are shipped.
"""

from __future__ import annotations

from pathlib import Path

from samlora.data.registry import Archive, DatasetSpec, Record, Source

#: Native ids in sorted order: 01L, 01R, ..., 14R.
IDS = tuple(f"{n:02d}{eye}" for n in range(1, 15) for eye in "LR")
N_TRAIN = 20  # first 20 sorted ids train (Image_01L–Image_10R), last 8 test (Image_11L–14R)


def read_layout(root: Path) -> list[Record]:
    """Expected records of the flat CHASE_DB1 layout under ``root`` (20 train, 8 test)."""
    return [
        Record(
            case=f"chase_db1_{nid}",
            split="train" if i < N_TRAIN else "test",
            image=root / f"Image_{nid}.jpg",
            mask=root / f"Image_{nid}_1stHO.png",
            mask2=root / f"Image_{nid}_2ndHO.png",
        )
        for i, nid in enumerate(sorted(IDS))
    ]


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
    split_convention="first20_last8: the first 20 sorted ids (Image_01L-Image_10R) = train, "
                     "the last 8 (Image_11L-Image_14R) = test; 1stHO is the reference, "
                     "2ndHO the human baseline",
)
