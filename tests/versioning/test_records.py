"""Snakemake metadata recorded inside DVC outputs, and adopted in a fresh copy.

A real Snakemake run on a two-rule workflow: without its ``.snakemake`` folder (what a
``dvc exp run --temp``/``--queue`` copy has), a params edit reruns nothing; with the
records adopted, the edit reruns exactly the job that reads the param, and an unchanged
copy reruns nothing even though its files were all written just now.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from samlora.versioning import records

SNAKEFILE = """
rule all:
    input: "runs/b.txt", "results/s/summary.csv"

rule a:
    output: "runs/a.txt"
    params: p=config["p"]
    shell: "echo {params.p} > {output}"

rule b:
    input: "runs/a.txt"
    output: "runs/b.txt"
    params: q=config["q"]
    shell: "cat {input} > {output}; echo {params.q} >> {output}"

rule s:
    input: "runs/b.txt"
    output: "results/s/summary.csv"
    shell: "wc -l {input} > {output}"
"""
DVC_YAML = """
stages:
  train:
    cmd: snakemake
    outs:
      - runs:
          persist: true
"""


def _snakemake(work: Path, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *args],
                         cwd=work, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout + res.stderr


def _planned(work: Path) -> set[str]:
    out = _snakemake(work, "-n", "--quiet", "rules")
    return {line.split()[0] for line in out.splitlines()
            if line.strip() and line.split()[0] in ("a", "b", "s")}


@pytest.fixture
def made(tmp_path: Path) -> Path:
    work = tmp_path / "w"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    (work / "config.yaml").write_text("p: 1\nq: 1\n")
    (work / "Snakefile").write_text('configfile: "config.yaml"\n' + SNAKEFILE)
    (work / "dvc.yaml").write_text(DVC_YAML)
    _snakemake(work)
    assert records.record(work) == 3
    return work


def _fresh_copy(work: Path, dest: Path) -> Path:
    """What a DVC temp copy holds: the files, no .snakemake, every file written just now."""
    shutil.copytree(work, dest, ignore=shutil.ignore_patterns(".snakemake"))
    for path in sorted(dest.rglob("*"), reverse=True):  # newest first: the worst order
        os.utime(path)
    return dest


def test_records_sit_inside_the_dvc_output_or_the_git_results(made: Path) -> None:
    kept = {records.output_of(p.relative_to(made / root / records.RECORDS))
            for root in ("runs", "results")
            for p in (made / root / records.RECORDS).rglob("*") if p.is_file()}
    assert kept == {"runs/a.txt", "runs/b.txt", "results/s/summary.csv"}
    assert records.dvc_out_dirs(made) == [Path("runs")]


def test_a_fresh_copy_without_records_misses_a_params_edit(made: Path, tmp_path: Path) -> None:
    """The defect the records fix: no metadata, no params trigger."""
    copy = _fresh_copy(made, tmp_path / "copy")
    for root in ("runs", "results"):
        shutil.rmtree(copy / root / records.RECORDS)
    (copy / "config.yaml").write_text("p: 2\nq: 1\n")
    assert "a" not in _planned(copy)


def test_adopted_records_rerun_exactly_the_edited_job(made: Path, tmp_path: Path) -> None:
    copy = _fresh_copy(made, tmp_path / "copy")
    assert records.adopt(copy) == 3
    assert _planned(copy) == set()  # fresh file times alone rerun nothing
    (copy / "config.yaml").write_text("p: 1\nq: 2\n")
    assert _planned(copy) == {"b", "s"}  # b reads q; s follows b; a is untouched
    assert records.adopt(copy) == 0  # metadata present: nothing to adopt


def test_adoption_keeps_the_order_the_jobs_ran_in(made: Path, tmp_path: Path) -> None:
    copy = _fresh_copy(made, tmp_path / "copy")
    records.adopt(copy)
    times = [(copy / p).stat().st_mtime for p in ("runs/a.txt", "runs/b.txt",
                                                   "results/s/summary.csv")]
    assert times == sorted(times) and len(set(times)) == 3


def test_force_replaces_metadata_after_a_checkout(made: Path) -> None:
    """After `dvc checkout` of an older experiment the records, not .snakemake, describe
    the files; --force says so."""
    meta = made / records.METADATA
    name = next(p for p in meta.rglob("*") if p.is_file()
                and records.output_of(p.relative_to(meta)) == "runs/a.txt")
    stale = json.loads(name.read_text()) | {"params": ["stale"]}
    name.write_text(json.dumps(stale))
    assert records.adopt(made) == 0
    assert records.adopt(made, force=True) == 3
    assert json.loads(name.read_text())["params"] != ["stale"]


def test_records_of_deleted_outputs_are_dropped(made: Path) -> None:
    (made / "runs/b.txt").unlink()
    records.record(made)
    kept = {records.output_of(p.relative_to(made / "runs" / records.RECORDS))
            for p in (made / "runs" / records.RECORDS).rglob("*") if p.is_file()}
    assert kept == {"runs/a.txt"}


def test_long_output_names_decode_across_snakemake_split_folders() -> None:
    """Snakemake splits a name longer than the file system's limit into '@' folders."""
    path = "results/runs/" + "x" * 400 + "/metrics_per_image.csv"
    b64 = base64.urlsafe_b64encode(path.encode()).decode()
    parts = [b64[i:i + 254] for i in range(0, len(b64), 254)]
    name = Path(*["@" + p for p in parts[:-1]], parts[-1])
    assert records.output_of(name) == path
