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
