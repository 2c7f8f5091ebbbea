"""Shared fixtures: the repository root, the data mirror and the composed configs.

The data mirror is a setting: ``SAMLORA_MIRROR`` names a folder holding the datasets in
their official layouts. It defaults to the lab's read-only copy beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _mirror_path() -> Path:
    return Path(os.environ.get("SAMLORA_MIRROR", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder (holds params.yaml, Snakefile, dvc.yaml)."""
    return REPO


@pytest.fixture(scope="session")
def mirror() -> Path:
    """Folder of real datasets in their official layouts (read-only; never copied into git)."""
    path = _mirror_path()
    if not (path / "DRIVE").is_dir():
        raise RuntimeError(
            f"data mirror {path} has no DRIVE/ folder: set SAMLORA_MIRROR to a folder "
            "holding DRIVE, CHASE_DB1, STARE, Drishti-GS1 and Kvasir-SEG in their official layouts"
        )
    return path


def _drive_case_files(drive: Path, num: str) -> list[Path]:
    """The official DRIVE files of case ``num`` (01-20 test, 21-40 training)."""
    sub = "training" if int(num) >= 21 else "test"
    files = [Path(sub, "images", f"{num}_{sub}.tif"), Path(sub, "1st_manual", f"{num}_manual1.gif"),
             Path(sub, "mask", f"{num}_{sub}_mask.gif")]
    if sub == "test":
        files.append(Path(sub, "2nd_manual", f"{num}_manual2.gif"))
    return [drive / f for f in files]


@pytest.fixture(scope="session")
def drive_subset(mirror: Path, tmp_path_factory: pytest.TempPathFactory):
    """``drive_subset(nums)``: a fresh, writable ``<tmp>/DRIVE`` in the official layout holding
    only DRIVE cases ``nums`` (e.g. ``("01", "21")``), copied from the mirror; prepare it
    with ``PreparePolicy(allow_subset=True)`` (or ``data.allow_subset: true``)."""
    import shutil

    def make(nums: tuple[str, ...]) -> Path:
        root = tmp_path_factory.mktemp("drive_subset") / "DRIVE"
        for num in nums:
            for src in _drive_case_files(mirror / "DRIVE", num):
                dest = root / src.relative_to(mirror / "DRIVE")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)  # writable: tests may corrupt it
        return root

    return make
