"""Every registered dataset gets a download and a prepare job; a registration-only dataset
fails its own job with the registration message while --keep-going carries on."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from samlora.data.registry import dataset_ids

from .conftest import job_counts, snakemake


def test_prepare_all_plans_every_dataset(workdir: Path) -> None:
    every = dataset_ids()
    (workdir / "all_datasets.yaml").write_text(yaml.safe_dump({"data": {"datasets": every}}))
    res = snakemake(workdir, "prepare_all", "-n", "--cores", "1", "--configfile",
                    "params.yaml", "all_datasets.yaml")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    counts = job_counts(out)
    assert counts["download_dataset"] == counts["prepare_dataset"] == len(every) == 14
    for name in every:
        assert f"data/processed/{name}/index.csv" in out


def test_registration_only_job_fails_and_others_go_on(workdir: Path, mirror: Path) -> None:
    """DRIVE is not in this mirror (it needs registration); STARE is."""
    shutil.copytree(mirror / "STARE", workdir / "lab_share" / "STARE")
    preset = {"data": {"mirror": "lab_share", "datasets": ["drive", "chase_db1", "stare"]},
              "studies": {"enabled": ["topolora_components"]}}  # a study of those sets
    (workdir / "share.yaml").write_text(yaml.safe_dump(preset))
    res = snakemake(workdir, "data/processed/drive/index.csv", "data/processed/stare/index.csv",
                    "--cores", "1", "--keep-going", "--configfile", "params.yaml", "share.yaml",
                    timeout=240)
    assert res.returncode != 0
    assert (workdir / "data/processed/stare/index.csv").is_file()
    assert not (workdir / "data/raw/drive/source.json").exists()
    log = (workdir / "logs/download_dataset/drive.log").read_text()
    assert "drive: mirror" in log and "has no folder DRIVE/" in log


def test_registration_message_in_the_job_log(workdir: Path) -> None:
    """Without a mirror, DRIVE's download job says where to register and what to place."""
    res = snakemake(workdir, "data/raw/drive/source.json", "--cores", "1")
    assert res.returncode != 0
    log = (workdir / "logs/download_dataset/drive.log").read_text()
    assert "drive needs registration" in log and "https://drive.grand-challenge.org/" in log
    assert "training/images/21_training.tif" in log  # which files to put where
