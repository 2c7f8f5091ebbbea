"""FIVES (Jin et al. 2022): 800 fundus images (2048×2048 PNG), official 600 / 200 split.

The figshare download is one RAR5 archive (1,764,974,308 bytes) holding the folder
``FIVES A Fundus Image Dataset for AI-based Vessel Segmentation/`` with
``train/Original/<n>_<C>.png`` and ``train/Ground truth/<n>_<C>.png`` (600), and the same
under ``test/`` (200); an image and its label share the file name, numbers restart in each
folder, and C is the category (A AMD, D diabetic retinopathy, G glaucoma, N normal). This
is the tree torch-em's FIVES loader reads after extracting that archive
(``torch_em/data/datasets/medical/fives.py``: the top folder above, ``<split>/Original/``
and ``<split>/Ground truth/``, the category the name's last ``_`` field) and SAM2LoRA's
(``dataloader/fives.py``: the label under the image's own name). Which numbers fall in which
category is the split file's reading (see its description). The download step fetches the
archive, extracts it (RAR through libarchive) and finds the layout under the top folder.
One consensus label per image, no FOV masks (computed). Split: ``splits/fives.json``
(official folders).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id

#: figshare's download link of the RAR archive (file 34969398 of item 19688169).
URL = "https://figshare.com/ndownloader/files/34969398"


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
        # No SHA-256 is published with the archive: the hash of the first download whose
        # layout checks out is pinned in data/checksums.lock.json (commit it).
        archives=(Archive(URL, sha256=None, name="FIVES.rar"),),
        citation="Jin et al., FIVES: A fundus image dataset for artificial intelligence based "
                 "vessel segmentation, Scientific Data 9, 475, 2022",
    ),
    reader=read_layout,
)
