"""FIVES (Jin et al. 2022): 800 fundus images (2048×2048 PNG), official 600 / 200 split.

Official layout (the figshare archive, extracted): ``train/Original/<n>_<C>.png`` and
``train/Ground truth/<n>_<C>.png`` (600), the same under ``test/`` (200); C is the
category (A AMD, D diabetic retinopathy, G glaucoma, N normal). The file names follow
secondary sources (check against the archive). One consensus label per image, no FOV
masks (computed). Split: ``splits/fives.json`` (official folders).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import DatasetSpec, Record, Source, native_id


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of the FIVES layout under ``root``, one per split-file case.

    Case ids are ``fives_<folder>_<n>_<C>`` (numbers restart in each folder).
    """
    recs = []
    for case, split in assignment.items():
        folder, name = native_id("fives", case).split("_", 1)
        recs.append(Record(
            case=case,
            split=split,
            image=root / folder / "Original" / f"{name}.png",
            mask=root / folder / "Ground truth" / f"{name}.png",
        ))
    return recs


SPEC = DatasetSpec(
    id="fives",
    task="vessel",
    label_kinds=("vessel",),
    folder="FIVES",
    source=Source(
        homepage="https://doi.org/10.6084/m9.figshare.19688169",
        # figshare serves the archive through a per-file download link that the registry
        # has not verified (and a RAR archive, which the extractor does not read): place
        # the extracted folders by hand.
        placement="the extracted train/ and test/ folders of the figshare archive",
        citation="Jin et al., FIVES: A fundus image dataset for artificial intelligence based "
                 "vessel segmentation, Scientific Data 9, 475, 2022",
    ),
    reader=read_layout,
)
