"""workflow/scripts/job-log.sh: each attempt's header and output go to the rule's log, and the
log keeps the earlier attempts of a retried or requeued job although Snakemake deletes it
before every attempt."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import venv_env

HEADER = re.compile(r"^== \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ rule=(\S+) attempt=(\d+) "
                    r"slurm_job=(\S+) slurm_restart=(\S+) host=\S+$", re.MULTILINE)


@pytest.fixture
def job_log(repo_root: Path, tmp_path: Path):
    """``job_log(attempt, *command, **env)``: run the script for logs/rule/x.log in tmp_path,
    as Snakemake would (deleting the log first); returns the exit status."""
    script = repo_root / "workflow/scripts/job-log.sh"
    log = tmp_path / "logs/rule/x.log"
    fake = tmp_path / "bin"  # an scontrol that knows no job: no cluster is asked
    fake.mkdir()
    (fake / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (fake / "scontrol").chmod(0o755)

    def run(attempt: int, *command: str, **env: str) -> int:
        log.unlink(missing_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        return subprocess.run(["bash", str(script), str(log), "rule", str(attempt), *command],
                              env=base | {"PATH": f"{fake}:/usr/bin:/bin"} | env,
                              cwd=tmp_path, timeout=30, check=False).returncode

    run.log = log
    return run


def _headers(text: str) -> list[tuple[str, ...]]:
    return [m.groups() for m in HEADER.finditer(text)]


def test_retries_append_and_a_fresh_run_starts_over(job_log) -> None:
    assert job_log(1, "sh", "-c", "echo first; echo oops >&2; exit 3") == 3
    assert job_log(2, "sh", "-c", "echo second") == 0
    text = job_log.log.read_text()
    assert _headers(text) == [("rule", "1", "local", "0"), ("rule", "2", "local", "0")]
    assert text.index("first") < text.index("oops") < text.index("attempt=2") < \
        text.index("second")
    assert job_log(1, "echo", "again") == 0  # a new run of the job: its own log only
    text = job_log.log.read_text()
    assert _headers(text) == [("rule", "1", "local", "0")] and "first" not in text


def test_a_requeued_slurm_job_keeps_its_first_start(job_log) -> None:
    assert job_log(1, "echo", "epoch 1", SLURM_JOB_ID="7", SLURM_RESTART_COUNT="0") == 0
    assert job_log(1, "echo", "resumed", SLURM_JOB_ID="7", SLURM_RESTART_COUNT="1") == 0
    text = job_log.log.read_text()
    assert _headers(text) == [("rule", "1", "7", "0"), ("rule", "1", "7", "1")]
    assert text.index("epoch 1") < text.index("resumed")
    # no restart count to be had (scontrol knows nothing): the same job id again continues
    assert job_log(1, "echo", "third", SLURM_JOB_ID="7") == 0
    assert _headers(job_log.log.read_text())[-1] == ("rule", "1", "7", "?")
    assert "epoch 1" in job_log.log.read_text()
    # another SLURM job for the same rule, first attempt: a new run
    assert job_log(1, "echo", "new", SLURM_JOB_ID="8") == 0
    assert _headers(job_log.log.read_text()) == [("rule", "1", "8", "?")]


def test_snakemake_retry_keeps_both_attempts(repo_root: Path, tmp_path: Path) -> None:
    """Snakemake itself deletes the log before the second attempt; the log still has both."""
    (tmp_path / "Snakefile").write_text(f'''
def attempt_number(wildcards, attempt):
    return attempt

rule flaky:
    output: "done.txt"
    log: "logs/flaky.log"
    resources:
        attempt=attempt_number,
    shell:
        "bash {repo_root}/workflow/scripts/job-log.sh {{log:q}} {{rule}} {{resources.attempt}} "
        "sh -c 'echo try {{resources.attempt}}; test {{resources.attempt}} -ge 2' "
        "&& touch {{output}}"
''')
    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--retries", "1"],
                         cwd=tmp_path, env=venv_env(), capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "logs/flaky.log").read_text()
    assert _headers(text) == [("flaky", "1", "local", "0"), ("flaky", "2", "local", "0")]
    assert "try 1" in text and "try 2" in text
