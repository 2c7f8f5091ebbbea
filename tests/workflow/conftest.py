"""Helpers to run Snakemake on a scratch copy of the workflow files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW_FILES = ["Snakefile", "params.yaml", "presets", "workflow", "notebooks", "dvc.yaml",
                  "environment.yml"]


def venv_env() -> dict[str, str]:
    """Environment whose PATH finds this interpreter's snakemake, dvc and python first."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a Snakemake dry run into {rule: count}."""
    block = output.split("Job stats:", 1)[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture
def workdir(repo_root: Path, tmp_path: Path) -> Path:
    """A scratch copy of the workflow files (no data, runs or results)."""
    for name in WORKFLOW_FILES:
        src = repo_root / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy2(src, tmp_path / name)
    return tmp_path


def snakemake(workdir: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir,
                          env=venv_env(), capture_output=True, text=True, timeout=timeout)
