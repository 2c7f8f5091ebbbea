"""ORIGA (Zhang et al. 2010): 650 fundus images with semi-automatic disc and cup maps.

The SiMES release was withdrawn; ORIGA circulates in third-party bundles, e.g. the Kaggle
bundle ``arnavjain1/glaucoma-datasets`` (folder ``ORIGA/``, named by the loaders that read
it). A copy holds::

    Images/NNN.jpg                          (NNN = 001-650)
    Semi-automatic-annotations/NNN.mat      variable ``mask``: 0 background, 1 disc rim,
                                            2 cup (as SAM2LoRA's ORIGA loader reads it)
    OrigaList.csv                           one row per image: Filename, Set (A/B), ...

Some copies name the annotation folder ``Semi-automatic-annotations-done-by-doctors-eg-
ground-truth``; either is read. Copies holding only ``Images/`` (and the list) ship no
masks and cannot be used. Some ``.mat`` maps are wider than their images (same height):
they are centre-cropped to the image, logged with both widths. Disc = values 1 and 2, cup
= value 2; every image shows both, so an empty one is an error.

Split: ``splits/origa.json`` holds a seeded 75/25 split of the ids 001-650, drawn once.
The release's own halves, Set A and Set B (325 images each, column ``Set`` of
``OrigaList.csv``), are the split variant ``set_a_b`` (train on A, test on B;
``data.split_variants.origa: set_a_b``). The package cannot know them before it sees the
list, so they are recorded once from a copy into the split file and committed::

    python -m samlora.data.sources.origa <folder holding OrigaList.csv>

The FOV is the whole image, as for the other disc/cup sets.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping
from pathlib import Path

from samlora.data.labels import Label, MatMap
from samlora.data.registry import DatasetSpec, Record, Source, image_scanner, native_id
from samlora.data.split_files import record_variant

VARIABLE = "mask"
DISC_VALUES = (1, 2)
CUP_VALUES = (2,)
#: Names the annotation folder has in the copies in circulation (the first is reported
#: when neither is there).
ANNOTATION_DIRS = ("Semi-automatic-annotations",
                   "Semi-automatic-annotations-done-by-doctors-eg-ground-truth")
LIST_CSV = "OrigaList.csv"
#: Split variant of Set A (train) / Set B (test).
SET_VARIANT = "set_a_b"
KAGGLE = "https://www.kaggle.com/datasets/arnavjain1/glaucoma-datasets"


def annotation_dir(root: Path) -> Path:
    """The annotation folder of the copy under ``root`` (the first name if neither exists)."""
    return next((root / d for d in ANNOTATION_DIRS if (root / d).is_dir()),
                root / ANNOTATION_DIRS[0])


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records under ``root``, one per split-file case (disc primary, cup extra)."""
    masks = annotation_dir(root)
    recs = []
    for case, split in assignment.items():
        n = native_id("origa", case)
        mat = masks / f"{n}.mat"
        recs.append(Record(
            case=case, split=split, image=root / "Images" / f"{n}.jpg",
            mask=mat, mask_reader=MatMap(VARIABLE, DISC_VALUES, crop_width=True),
            extra=(Label("cup", mat, MatMap(VARIABLE, CUP_VALUES, crop_width=True)),)))
    return recs


def read_sets(root: Path) -> dict[str, list[str]]:
    """Set A and Set B of ``root/OrigaList.csv`` as ``{"train": A, "test": B}`` case ids.

    Raises:
        FileNotFoundError: no ``OrigaList.csv`` under ``root``.
        ValueError: no ``Filename`` or ``Set`` column, a set other than A/B, or an image
            listed twice (the message names the file and the row).
    """
    path = Path(root) / LIST_CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; give the ORIGA folder that holds "
                                f"{LIST_CSV} (with its Filename and Set columns)")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    header = {k.strip().lower(): k for k in (rows[0] if rows else {})}
    if "filename" not in header or "set" not in header:
        raise ValueError(f"{path}: expected the columns Filename and Set, found "
                         f"{sorted(header.values())}")
    sets: dict[str, list[str]] = {"train": [], "test": []}
    seen: set[str] = set()
    for i, row in enumerate(rows, start=2):
        name, which = row[header["filename"]].strip(), row[header["set"]].strip().upper()
        if which not in ("A", "B"):
            raise ValueError(f"{path}: row {i} ({name}) has Set {which!r}, expected A or B")
        case = f"origa_{Path(name).stem}"
        if case in seen:
            raise ValueError(f"{path}: row {i} lists {name} a second time")
        seen.add(case)
        sets["train" if which == "A" else "test"].append(case)
    return {k: sorted(v) for k, v in sets.items()}


def record_set_a_b(root: Path, splits_dir: Path | None = None) -> Path:
    """Record Set A / Set B of the copy under ``root`` as the split variant ``set_a_b`` of
    ``splits/origa.json`` (once; an identical recording is a no-op).

    Returns:
        The split file written.

    Raises:
        SplitFileError: the lists do not cover exactly the split file's 650 cases, or a
            different recording is already there.
    """
    return record_variant("origa", SET_VARIANT, read_sets(root), splits_dir)


SPEC = DatasetSpec(
    id="origa",
    task="disc_cup",
    label_kinds=("disc", "cup"),
    folder="ORIGA",
    source=Source(
        homepage=f"{KAGGLE} (folder ORIGA/; the SiMES release was withdrawn)",
        placement=("the ORIGA folder of a copy that ships the disc/cup maps (Images/NNN.jpg "
                   "with Semi-automatic-annotations/NNN.mat or Semi-automatic-annotations-"
                   f"done-by-doctors-eg-ground-truth/NNN.mat, as in {KAGGLE}; a copy with "
                   "only Images/ and OrigaList.csv has no masks and cannot be used)"),
        citation="Zhang et al., ORIGA-light: an online retinal fundus image database for "
                 "glaucoma analysis and research, IEEE EMBC 2010",
    ),
    reader=read_layout,
    labels=(("background", 0), ("disc", 1)),
    scan=image_scanner("origa", "Images"),
    extra_labels=("cup",),
    fov_default="whole",
)


def main(argv: list[str]) -> int:
    """``python -m samlora.data.sources.origa <folder>``: record Set A/B from its list."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m samlora.data.sources.origa <folder holding "
                         f"{LIST_CSV}>\n")
        return 2
    try:
        sys.stdout.write(f"{record_set_a_b(Path(argv[0]))}\n")
    except (OSError, ValueError) as exc:  # SplitFileError is a ValueError
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
