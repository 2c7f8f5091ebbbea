"""STARE (Hoover et al. 2000): 20 fundus images with vessel labels from two observers.

Official layout (one tarball each, no top folder; extracted into folders of their names):
``stare-images/imNNNN.ppm.gz`` (the 20 vessel-labelled images only; the project's other
images are not in this tarball), ``labels-ah/imNNNN.ah.ppm.gz`` (Hoover, the reference)
and ``labels-vk/imNNNN.vk.ppm.gz`` (Kouznetsova, the human baseline). Copies holding the
decompressed ``.ppm`` files are read as well. No FOV masks are shipped (computed).
Split: ``splits/stare.json`` (first 10 / last 10 by id; leave-one-out variant).

The server's https certificate fails verification, so a download falls back to the same
path over http; the tarballs' SHA-256 values (pinned here, as two independent fetches
found them) keep that download checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from samlora.data.layout import pick_existing
from samlora.data.registry import Archive, DatasetSpec, Record, Source, native_id

_BASE = "https://cecas.clemson.edu/~ahoover/stare/probing"
#: SHA-256 of the three tarballs, as two independent fetches pinned them.
STARE_IMAGES_SHA256 = "5f7b509b6067cad4f1be84933145d783de9ec087b3eaaf4db0103dd0144dd433"
LABELS_AH_SHA256 = "ebf2f1e17ca955f24579d9edd990e2dae79a5c82def69f0985d8e24f826ddd2f"
LABELS_VK_SHA256 = "47474a701536b0cfdb369fdce012be36141e9f44d80387f0179446b5cb0f5576"


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
        # The tarballs hold bare files (no top folder), so each goes into a folder of its name.
        archives=(Archive(f"{_BASE}/stare-images.tar", STARE_IMAGES_SHA256, into="stare-images"),
                  Archive(f"{_BASE}/labels-ah.tar", LABELS_AH_SHA256, into="labels-ah"),
                  Archive(f"{_BASE}/labels-vk.tar", LABELS_VK_SHA256, into="labels-vk")),
        citation="Hoover, Kouznetsova and Goldbaum, Locating blood vessels in retinal images by "
                 "piecewise threshold probing of a matched filter response, IEEE TMI 19(3), 2000",
    ),
    reader=read_layout,
)
