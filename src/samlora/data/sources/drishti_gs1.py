"""Drishti-GS1 (Sivaswamy et al. 2014/2015): 101 fundus images, optic disc and cup soft maps.

Official layout (``Drishti-GS1_files.zip``, after registration by form, top folder
``Drishti-GS1_files/``; the paths as bob.ip.binseg's Drishti-GS1 protocol files list them)::

    Training/Images/drishtiGS_NNN.png
    Training/GT/drishtiGS_NNN/SoftMap/drishtiGS_NNN_{OD,cup}segSoftmap.png
    Test/Images/drishtiGS_NNN.png
    Test/Test_GT/drishtiGS_NNN/SoftMap/drishtiGS_NNN_{OD,cup}segSoftmap.png

Some copies put the images one level deeper (``Images/ALL/``) and name the test ground
truth ``Test/GT/``, like the training one (the mirror's copy, from
subhamshome/optic-disc-segmentation-drishtigs); the reader picks whichever of these
folders exists. The soft maps hold the share of experts marking a pixel
(0/64/128/191/255); ``data.soft_maps`` binarises them (majority ≥ 128 by default, or
union > 0). Disc is the primary label, cup the extra one. The images are centred on the
optic nerve head, so the FOV is the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, SoftMap
from samlora.data.registry import DatasetSpec, Record, Source, native_id

SUBDIR = {"train": "Training", "test": "Test"}


def _images_dir(base: Path) -> Path:
    """``Images/ALL`` where a copy has that extra level, else ``Images``."""
    return base / "Images" / "ALL" if (base / "Images" / "ALL").is_dir() else base / "Images"


def _gt_dir(base: Path) -> Path:
    """``Test_GT`` (the official test folder) where present, else ``GT``."""
    return base / "Test_GT" if (base / "Test_GT").is_dir() else base / "GT"


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    recs = []
    for case, split in assignment.items():
        name = f"drishtiGS_{native_id('drishti_gs1', case)}"
        base = root / SUBDIR[split]
        soft = _gt_dir(base) / name / "SoftMap"
        recs.append(Record(
            case=case, split=split,
            image=_images_dir(base) / f"{name}.png",
            mask=soft / f"{name}_ODsegSoftmap.png", mask_reader=SoftMap(),
            extra=(Label("cup", soft / f"{name}_cupsegSoftmap.png", SoftMap()),),
        ))
    return recs


SPEC = DatasetSpec(
    id="drishti_gs1",
    task="disc_cup",
    label_kinds=("disc", "cup"),
    folder="Drishti-GS1",
    source=Source(
        homepage="http://cvit.iiit.ac.in/projects/mip/drishti-gs/mip-dataset2/Home.php",
        registration=True,
        placement=("the release archive (Drishti-GS1_files.zip), or its extracted folders "
                   "Training/ and Test/"),
        citation="Sivaswamy et al., Drishti-GS: retinal image dataset for optic nerve head "
                 "(ONH) segmentation, IEEE ISBI 2014",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    extra_labels=("cup",),
    fov_default="whole",
)
