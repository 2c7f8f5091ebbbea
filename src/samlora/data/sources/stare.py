"""STARE (Hoover et al. 2000): 20 fundus images with vessel labels from two observers.

Official layout (one tarball each, no top folder; extracted into folders of their names):
``stare-images/imNNNN.ppm.gz`` (the tarball holds all 400 project images; the 20 labelled
ones are used), ``labels-ah/imNNNN.ah.ppm.gz`` (Hoover, the reference) and
``labels-vk/imNNNN.vk.ppm.gz`` (Kouznetsova, the human baseline). Copies holding the
decompressed ``.ppm`` files are read as well. No FOV masks are shipped (computed).
Split: ``splits/stare.json`` (first 10 / last 10 by id; leave-one-out variant).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.layout import pick_existing
from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id

_BASE = "https://cecas.clemson.edu/~ahoover/stare/probing"


def _ppm(folder: Path, name: str) -> Path:
    return pick_existing(folder / f"{name}.ppm.gz", folder / f"{name}.ppm")


def read_layout(root: Path, assignment: Mapping[str, str]) -> list[Record]:
    """Expected records of the STARE layout under ``root``, one per split-file case."""
    recs = []
    for case, split in assignment.items():
        n = native_id("stare", case)
        recs.append(Record(
            case=case,
            split=split,
            image=_ppm(root / "stare-images", f"im{n}"),
            mask=_ppm(root / "labels-ah", f"im{n}.ah"),
            mask2=_ppm(root / "labels-vk", f"im{n}.vk"),
        ))
    return recs


SPEC = DatasetSpec(
    id="stare",
    task="vessel",
    label_kinds=("vessel", "vessel_2nd_observer"),
    folder="STARE",
    source=Source(
        homepage="https://cecas.clemson.edu/~ahoover/stare/",
        # No published checksums: the first download pins them in data/checksums.lock.json.
        # The tarballs hold bare files (no top folder), so each goes into a folder of its name.
        archives=(Archive(f"{_BASE}/stare-images.tar", into="stare-images"),
                  Archive(f"{_BASE}/labels-ah.tar", into="labels-ah"),
                  Archive(f"{_BASE}/labels-vk.tar", into="labels-vk")),
        citation="Hoover, Kouznetsova and Goldbaum, Locating blood vessels in retinal images by "
                 "piecewise threshold probing of a matched filter response, IEEE TMI 19(3), 2000",
    ),
    reader=read_layout,
)
