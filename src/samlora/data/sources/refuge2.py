"""REFUGE2 download (Orlando et al. 2020): REFUGE's 1,200 images, one disc/cup map each.

What the REFUGE2 download holds is the data of REFUGE, the 2018 challenge: 1,200 images,
400 train / 400 validation / 400 test, all with disc/cup maps. REFUGE2 itself has 2,000
images; the 800 beyond REFUGE's are not in this download, and the split file
(``splits/refuge2.json``) covers the 1,200.

Two distributions are read. ``REFUGE2.zip`` holds ``REFUGE2/`` with six inner zips (and
``__MACOSX/``, skipped); the download step extracts each inner zip into a folder of its
stem, so the root is that ``REFUGE2/`` folder, with the member paths of the inner zips as
the ml_prepare REFUGE builder reads them straight from those zips (test maps sorted by
diagnosis into ``G/`` and ``N/``)::

    REFUGE-Training400/Training400/{Glaucoma/gNNNN.jpg, Non-Glaucoma/nNNNN.jpg}
    Annotation-Training400/Disc_Cup_Masks/{Glaucoma,Non-Glaucoma}/{g,n}NNNN.bmp
    REFUGE-Validation400/VNNNN.jpg
    REFUGE-Validation400-GT/Disc_Cup_Masks/VNNNN.bmp
    REFUGE-Test400/Test400/TNNNN.jpg
    REFUGE-Test-GT/Disc_Cup_Masks/{G,N}/TNNNN.bmp

The six zips placed (or extracted) side by side give the same tree without the
``REFUGE-Training400/`` and ``REFUGE-Test400/`` levels. The ``REFUGE2-Training`` folder in
circulation holds the same images as ``REFUGE1-Train-400/{Images,
Annotation-Training400/Disc_Cup_Masks}``, ``REFUGE1-Val-400/{REFUGE-Validation400,
REFUGE-Validation400-GT/Disc_Cup_Masks}`` and ``REFUGE1-Test-400/{Images,
Annotation/Disc_Cup_Masks}`` (folder names as public REFUGE code reads them). Each part
is taken from the first of its folders present; train files may sit in their
``Glaucoma``/``Non-Glaucoma`` folder or directly in the part's folder, test maps in
``G``/``N`` or directly.

One grey map per image: 0 cup, 128 rim, 255 background. Disc = every value below 255
(cup included), cup = 0. The images are centred on the disc with little dark surround, so
the FOV is the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, OneMap
from samlora.data.layout import pick_existing
from samlora.data.registry import DatasetSpec, Record, Source, native_id

_TRAIN_GROUP = {"g": "Glaucoma", "n": "Non-Glaucoma"}

#: Per part, its folder under the root in each distribution (the first present is used).
PARTS = {
    "train_images": ("Training400", "REFUGE-Training400/Training400",
                     "REFUGE1-Train-400/Images"),
    "train_maps": ("Annotation-Training400/Disc_Cup_Masks",
                   "REFUGE1-Train-400/Annotation-Training400/Disc_Cup_Masks"),
    "val_images": ("REFUGE-Validation400", "REFUGE1-Val-400/REFUGE-Validation400"),
    "val_maps": ("REFUGE-Validation400-GT/Disc_Cup_Masks",
                 "REFUGE1-Val-400/REFUGE-Validation400-GT/Disc_Cup_Masks"),
    "test_images": ("Test400", "REFUGE-Test400/Test400", "REFUGE1-Test-400/Images"),
    "test_maps": ("REFUGE-Test-GT/Disc_Cup_Masks",
                  "REFUGE1-Test-400/Annotation/Disc_Cup_Masks"),
}


def _folders(root: Path) -> dict[str, Path]:
    """Each part's folder under ``root``: the first candidate present, else the first."""
    return {part: next((root / c for c in cands if (root / c).is_dir()), root / cands[0])
            for part, cands in PARTS.items()}


def _paths(folders: dict[str, Path], name: str, split: str) -> tuple[Path, Path]:
    if split == "train":
        group = _TRAIN_GROUP[name[0]]
        return (pick_existing(folders["train_images"] / group / f"{name}.jpg",
                              folders["train_images"] / f"{name}.jpg"),
                pick_existing(folders["train_maps"] / group / f"{name}.bmp",
                              folders["train_maps"] / f"{name}.bmp"))
    if split == "val":
        return folders["val_images"] / f"{name}.jpg", folders["val_maps"] / f"{name}.bmp"
    maps = folders["test_maps"]
    return (folders["test_images"] / f"{name}.jpg",
            pick_existing(*(maps / sub / f"{name}.bmp" for sub in ("N", "G", ""))))


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    folders = _folders(Path(root))
    recs = []
    for case, split in assignment.items():
        image, label = _paths(folders, native_id("refuge2", case), split)
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
        placement=("REFUGE2.zip, or the six archives it holds (REFUGE-Training400.zip, "
                   "Annotation-Training400.zip, REFUGE-Validation400.zip, "
                   "REFUGE-Validation400-GT.zip, REFUGE-Test400.zip, REFUGE-Test-GT.zip), or "
                   "their extracted folders, or the REFUGE2-Training folder (REFUGE1-Train-400/"
                   ", REFUGE1-Val-400/, REFUGE1-Test-400/)"),
        citation="Orlando et al., REFUGE Challenge: a unified framework for evaluating "
                 "automated methods for glaucoma assessment from fundus photographs, "
                 "Medical Image Analysis 59, 2020",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    extra_labels=("cup",),
    fov_default="whole",
)
