"""SL-SSDD (Ke et al. 2025): sea-land masks for the 1160 SAR images of SSDD.

SL-SSDD ships only the masks (``SL-SSDD.zip`` at github.com/Han-Ke/SL-SSDD; PNG named
like the SSDD image, 0 = land, 255 = sea); the images are SSDD's (``<id>.jpg``, ids
000001–001160, from the Official-SSDD release). The two come from different places, so
the user places them side by side: ``images/<id>.jpg`` and ``masks/<id>.png``.
The foreground is the sea; the FOV is the whole image.
Split: ``splits/sl_ssdd.json`` (SSDD's 8:2: ids ending in 1 or 9 are test).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import DatasetSpec, Record, Source, native_id


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of the combined SSDD image + SL-SSDD mask layout under ``root``."""
    recs = []
    for case, split in assignment.items():
        n = native_id("sl_ssdd", case)
        recs.append(Record(case=case, split=split, image=root / "images" / f"{n}.jpg",
                           mask=root / "masks" / f"{n}.png"))
    return recs


SPEC = DatasetSpec(
    id="sl_ssdd",
    task="sea_land",
    label_kinds=("sea",),
    folder="SL-SSDD",
    source=Source(
        homepage="https://github.com/Han-Ke/SL-SSDD",
        # The masks are one archive in that repository; the SSDD images are distributed
        # through cloud-drive links (Official-SSDD), so both are placed by hand.
        placement=("the 1160 SSDD images as images/<id>.jpg and the SL-SSDD masks (from "
                   "SL-SSDD.zip of the GitHub repository) as masks/<id>.png, or an archive "
                   "holding both folders"),
        citation="Ke et al., SLA-Net: A novel sea-land aware network for accurate SAR ship "
                 "detection guided by hierarchical attention mechanism, Remote Sensing 17, "
                 "3576, 2025; images: Zhang et al., SAR ship detection dataset (SSDD): "
                 "official release and comprehensive data analysis, Remote Sensing 13, 2021",
    ),
    reader=read_layout,
    labels=(("background", 0), ("sea", 1)),
    fov_default="whole",
)
