"""REFUGE2 (Orlando et al. 2020; REFUGE challenge data): 1200 images, one disc/cup map each.

Layout of the REFUGE2 download's inner archives once extracted (names as in the REFUGE
release (check)); test maps are sorted by diagnosis into ``G/`` and ``N/``::

    Training400/{Glaucoma/gNNNN.jpg, Non-Glaucoma/nNNNN.jpg}
    Annotation-Training400/Disc_Cup_Masks/{Glaucoma/gNNNN.bmp, Non-Glaucoma/nNNNN.bmp}
    REFUGE-Validation400/VNNNN.jpg
    REFUGE-Validation400-GT/Disc_Cup_Masks/VNNNN.bmp
    Test400/TNNNN.jpg
    REFUGE-Test-GT/Disc_Cup_Masks/{G,N}/TNNNN.bmp

One grey map per image: 0 cup, 128 rim, 255 background. Disc = every value below 255
(cup included), cup = 0. The images are centred on the disc with little dark surround, so
the FOV is the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, OneMap
from samlora.data.registry import DatasetSpec, Record, Source, native_id

_TRAIN_GROUP = {"g": "Glaucoma", "n": "Non-Glaucoma"}


def _test_map(root: Path, name: str) -> Path:
    """The test map sits in ``G/`` or ``N/`` by diagnosis; take the one present (else ``N/``)."""
    base = root / "REFUGE-Test-GT" / "Disc_Cup_Masks"
    return base / "G" / f"{name}.bmp" if (base / "G" / f"{name}.bmp").is_file() \
        else base / "N" / f"{name}.bmp"


def _paths(root: Path, name: str, split: str) -> tuple[Path, Path]:
    if split == "train":
        group = _TRAIN_GROUP[name[0]]
        return (root / "Training400" / group / f"{name}.jpg",
                root / "Annotation-Training400" / "Disc_Cup_Masks" / group / f"{name}.bmp")
    if split == "val":
        return (root / "REFUGE-Validation400" / f"{name}.jpg",
                root / "REFUGE-Validation400-GT" / "Disc_Cup_Masks" / f"{name}.bmp")
    return root / "Test400" / f"{name}.jpg", _test_map(root, name)


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    recs = []
    for case, split in assignment.items():
        image, label = _paths(root, native_id("refuge2", case), split)
        recs.append(Record(case=case, split=split, image=image, mask=label,
                           mask_reader=OneMap("disc"),
                           extra=(Label("cup", label, OneMap("cup")),)))
    return recs


SPEC = DatasetSpec(
    id="refuge2",
    task="disc_cup",
    label_kinds=("disc", "cup"),
    folder="REFUGE2",
    source=Source(
        homepage="https://refuge.grand-challenge.org/",
        registration=True,
        placement=("the archives inside the REFUGE2 download (REFUGE-Training400.zip, "
                   "Annotation-Training400.zip, REFUGE-Validation400.zip, "
                   "REFUGE-Validation400-GT.zip, REFUGE-Test400.zip, REFUGE-Test-GT.zip), or "
                   "their extracted folders"),
        citation="Orlando et al., REFUGE Challenge: a unified framework for evaluating "
                 "automated methods for glaucoma assessment from fundus photographs, "
                 "Medical Image Analysis 59, 2020",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    extra_labels=("cup",),
    fov_default="whole",
)
