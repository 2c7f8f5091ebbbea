"""SL-SSDD (Ke et al. 2025): sea-land masks for the 1160 SAR images of SSDD.

Two parts from two places, read as they come:

- the masks, downloaded: ``SL-SSDD.zip`` of github.com/Han-Ke/SL-SSDD (:data:`ARCHIVE`,
  542,554 bytes), ``SL-SSDD/train/<id>.png`` (928) and ``SL-SSDD/test/<id>.png`` (232),
  8-bit grey, 0 = land, 255 = sea, named like the SSDD image;
- the images, placed by hand: SSDD's official release (github.com/TianwenZhang0825/
  Official-SSDD, Google Drive or Baidu links) ships them as ``JPEGImages_train/<id>.jpg``
  and ``JPEGImages_test/<id>.jpg``. Copy the two folders beside the masks' ``train/``
  and ``test/`` folders or beside ``SL-SSDD/`` (after the download: into
  ``<raw_dir>/sl_ssdd/extracted/``, the folder the missing-files message names); a single
  ``JPEGImages/`` holding all 1160 is read as well.

Ids run 000001-001160; SSDD's test images (and SL-SSDD's ``test/``) are those whose id
ends in 1 or 9, which is ``splits/sl_ssdd.json`` (232 test, 928 train). A case's folders
follow from its id, not from the split assigned. Copies placed earlier as ``images/`` +
``masks/`` are read too. The foreground is the sea; the FOV is the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.layout import pick_existing
from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id

ARCHIVE = Archive("https://github.com/Han-Ke/SL-SSDD/raw/main/SL-SSDD.zip",
                  sha256="da66b1807ea91a1f593cd62d4987f9d2ce4b410ede8ea97e231ad6f5f9455989")
SSDD = "https://github.com/TianwenZhang0825/Official-SSDD"


def ssdd_part(native: str) -> str:
    """``test`` for the ids SSDD tests on (last digit 1 or 9), else ``train``."""
    return "test" if native[-1] in "19" else "train"


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of SSDD's images and SL-SSDD's masks under ``root``."""
    recs = []
    for case, split in assignment.items():
        n = native_id("sl_ssdd", case)
        part = ssdd_part(n)
        image = pick_existing(root / f"JPEGImages_{part}" / f"{n}.jpg",
                              root / "JPEGImages" / f"{n}.jpg", root / "images" / f"{n}.jpg")
        mask = pick_existing(root / "SL-SSDD" / part / f"{n}.png", root / part / f"{n}.png",
                             root / "masks" / f"{n}.png")
        recs.append(Record(case=case, split=split, image=image, mask=mask))
    return recs


SPEC = DatasetSpec(
    id="sl_ssdd",
    task="sea_land",
    label_kinds=("sea",),
    folder="SL-SSDD",
    source=Source(
        homepage="https://github.com/Han-Ke/SL-SSDD",
        # The masks are a pinned download; the SSDD images come through cloud-drive links
        # (Official-SSDD) and are placed by hand beside them.
        archives=(ARCHIVE,),
        placement=(f"SSDD's JPEGImages_train/ and JPEGImages_test/ (from {SSDD}) beside "
                   "the train/ and test/ folders of SL-SSDD.zip"),
        citation="Ke et al., SLA-Net: A novel sea-land aware network for accurate SAR ship "
                 "detection guided by hierarchical attention mechanism, Remote Sensing 17, "
                 "3576, 2025; images: Zhang et al., SAR ship detection dataset (SSDD): "
                 "official release and comprehensive data analysis, Remote Sensing 13, 2021",
    ),
    reader=read_layout,
    labels=(("background", 0), ("sea", 1)),
    fov_default="whole",
)
