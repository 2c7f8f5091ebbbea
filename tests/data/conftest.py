"""Fixtures: DRIVE and CHASE_DB1 prepared once from the mirror, and scratch copies to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from samlora.data import split_files
from samlora.data.download import fetch_dataset
from samlora.data.prepare import prepare_dataset

FOV_CFG = {"red_threshold": 0.1, "radius": 3}


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """mtime (ns) and bytes of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def prepared(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{dataset: processed folder}`` for drive and chase_db1, each prepared once."""
    base = tmp_path_factory.mktemp("data")
    out = {}
    for name in ("drive", "chase_db1"):
        root = fetch_dataset(name, base / "raw", mirror, base / "checksums.lock.json")
        prepare_dataset(name, root, base / "processed" / name, FOV_CFG)
        out[name] = base / "processed" / name
    return out


@pytest.fixture(scope="session")
def indexes(prepared: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """The written index.csv of each prepared dataset (empty cells as '')."""
    return {k: pd.read_csv(v / "index.csv", dtype=str, keep_default_na=False)
            for k, v in prepared.items()}


@pytest.fixture()
def chase_copy(mirror: Path, tmp_path: Path) -> Path:
    """A writable copy of the mirror's CHASE_DB1 folder (84 files, 2.6 MB) under tmp_path."""
    dest = tmp_path / "mirror" / "CHASE_DB1"
    shutil.copytree(mirror / "CHASE_DB1", dest)
    return dest


@pytest.fixture()
def drive_copy(mirror: Path, tmp_path: Path) -> Path:
    """A writable copy of the mirror's DRIVE folder (140 files) under tmp_path."""
    dest = tmp_path / "mirror" / "DRIVE"
    shutil.copytree(mirror / "DRIVE", dest)
    return dest


@pytest.fixture()
def splits_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch copy of the committed split files, used instead of the package's."""
    dest = tmp_path / "splits"
    shutil.copytree(split_files.SPLITS_DIR, dest)
    monkeypatch.setattr(split_files, "SPLITS_DIR", dest)
    return dest
