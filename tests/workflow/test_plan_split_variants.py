"""Changing data.split_variants reruns that dataset's prepare job, which writes the fold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import job_counts, snakemake

TARGET = "data/processed/stare/index.csv"


def _preset(workdir: Path, name: str, mirror: Path, variant: str | None) -> str:
    data = {"mirror": str(mirror), "datasets": ["drive", "chase_db1", "stare"],
            "split_variants": {"stare": variant}}
    (workdir / name).write_text(yaml.safe_dump({"data": data}))
    return name


@pytest.mark.slow  # two real prepare runs of STARE (~30 s)
def test_changing_the_fold_reruns_prepare(workdir: Path, mirror: Path) -> None:
    default = _preset(workdir, "default.yaml", mirror, None)
    fold = _preset(workdir, "fold.yaml", mirror, "leave_one_out/3")
    res = snakemake(workdir, TARGET, "--cores", "1", "--configfile", "params.yaml", default,
                    timeout=240)
    assert res.returncode == 0, res.stderr
    index = pd.read_csv(workdir / TARGET, dtype=str, keep_default_na=False)
    assert index["split"].value_counts().to_dict() == {"train": 10, "test": 10}

    res = snakemake(workdir, TARGET, "-n", "--cores", "1", "--configfile", "params.yaml",
                    default)
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr

    res = snakemake(workdir, TARGET, "-n", "--cores", "1", "--configfile", "params.yaml", fold)
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert counts == {"prepare_dataset": 1, "total": 1}  # not the download

    res = snakemake(workdir, TARGET, "--cores", "1", "--configfile", "params.yaml", fold,
                    timeout=240)
    assert res.returncode == 0, res.stderr
    index = pd.read_csv(workdir / TARGET, dtype=str, keep_default_na=False)
    assert index.loc[index["split"] == "test", "case"].tolist() == ["stare_0004"]
    assert (index["split"] == "train").sum() == 19
    recorded = yaml.safe_load((workdir / "data/processed/stare/prepare_config.yaml").read_text())
    assert recorded["split_variant"] == "leave_one_out/3"


def test_a_bad_fold_fails_the_plan(workdir: Path, mirror: Path) -> None:
    bad = _preset(workdir, "bad.yaml", mirror, "fold3")
    res = snakemake(workdir, TARGET, "-n", "--cores", "1", "--configfile", "params.yaml", bad)
    assert res.returncode != 0
    assert "split_variants" in res.stdout + res.stderr
