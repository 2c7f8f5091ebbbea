"""The workflow on a real SLURM cluster: one training run and its prediction through the
slurm profile, with the training job requeued while it trains.

``.ci/slurm/cluster.sh`` brings up a one-node SLURM 22.05 cluster with one fake GPU (it
installs slurm-wlm and munge with apt when they are missing, so the test needs root). The
scratch repository's CI profile is a copy of ``workflow/profiles/slurm`` edited for that
cluster (no accounting, so no account and squeue for status; resources that fit 2 CPUs).
Once the training job is running and has saved an epoch, ``scontrol requeue`` kills it and
puts it back in the queue; SLURM holds a requeued job ~2 minutes on its BeginTime, which the
test lifts with ``scontrol update jobid=<id> StartTime=now``. The test then checks that

- the job started again under the same job id and resumed from runs/<run>/last.pt (its
  second attempt logs "resuming ... from epoch K" and trains only the epochs after K),
- the log keeps both attempts, each after its header line (slurm_restart=0, then 1),
- sbatch got ``--gpus=1`` and ``--cpus-per-gpu`` for the training job (no --cpus-per-task),
  and SLURM holds the job to that (one GPU, CPUs per GPU),
- the workflow finishes: weights and predictions are written, every epoch is in last.pt.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import venv_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow]  # ~4 min here

METHOD = "decoder_only"
RUN = f"{METHOD}__drive__seed0"
TEST_SET = "drive"
#: Epochs of the run: ~15 s each on 2 CPUs with the embedding cache off (so every epoch
#: encodes its images). The job is requeued after the first is saved and before the last.
EPOCHS = 3
#: CPUs per GPU the CI profile gives the training job (the node has 2).
TRAIN_CPUS_PER_GPU = 2
#: Wall-clock limit for the whole Snakemake run.
RUN_TIMEOUT_S = 900
CLUSTER_SH = ".ci/slurm/cluster.sh"
FILES = ["Snakefile", "environment.yml", "params.yaml", "presets", "workflow", "notebooks", "dvc.yaml", "src",
         ".dvc", ".dvcignore", ".gitignore"]


def _out(cmd: list[str], env: dict[str, str], timeout: int = 30) -> str:
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                         check=False)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def cluster(repo_root: Path) -> Iterator[dict[str, str]]:
    """The environment (SLURM_CONF set) of a running one-node cluster; torn down after."""
    if os.geteuid() != 0:
        pytest.fail("the SLURM test needs root: .ci/slurm/cluster.sh installs slurm-wlm and "
                    "munge with apt and starts slurmd as root")
    # not under pytest's tmp_path: its folders are 0700, and munged (the munge user) keeps
    # its socket in this folder
    folder = Path(tempfile.mkdtemp(prefix="samlora-slurm-", dir="/tmp"))
    folder.chmod(0o755)
    script = str(repo_root / CLUSTER_SH)
    try:
        res = subprocess.run(["bash", script, "up", str(folder)], capture_output=True,
                             text=True, timeout=900, check=False)
        if res.returncode != 0:
            pytest.fail(f"{CLUSTER_SH} up failed ({res.returncode}); if apt could not install "
                        f"slurm-wlm munge, see its output:\n{res.stdout[-4000:]}\n"
                        f"{res.stderr[-6000:]}")
        yield venv_env() | {"SLURM_CONF": str(folder / "etc/slurm.conf")}
    finally:
        down = subprocess.run(["bash", script, "down", str(folder)], capture_output=True,
                              text=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)
        assert down.returncode == 0, f"{CLUSTER_SH} down failed:\n{down.stderr}"


@pytest.fixture(scope="module")
def scratch(repo_root: Path, mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch repository: the smoke preset cut to one run and one test set, and the CI
    profile workflow/profiles/slurm-ci (the project's slurm profile, edited)."""
    work = tmp_path_factory.mktemp("slurm-repo")
    for name in FILES:
        src = repo_root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    shutil.rmtree(work / ".dvc" / "tmp", ignore_errors=True)
    preset = yaml.safe_load((repo_root / "tests/fixtures/smoke.yaml").read_text())
    study = preset["studies"]["smoke"]
    study["methods"] = [METHOD]
    study["protocols"] = [{"train": "drive", "test": [TEST_SET]}]
    preset["data"] = {"datasets": ["drive"], "mirror": str(mirror)}
    preset["train"] |= {"epochs": EPOCHS, "embedding_cache": "off"}
    (work / "presets/smoke.yaml").write_text(yaml.safe_dump(preset))

    profile = yaml.safe_load((repo_root / "workflow/profiles/slurm/config.yaml").read_text())
    defaults, rules = profile["default-resources"], profile["set-resources"]
    # the test cluster has no accounting (so no accounts: the executor's guess fails and it
    # submits without -A) and partitions cpu and gpu on one node of 2 CPUs and ~24 GB
    del defaults["slurm_account"]
    defaults |= {"slurm_partition": "cpu", "mem_mb": 1000, "runtime": 30}
    rules["train_model"] |= {"slurm_partition": "gpu", "cpus_per_gpu": TRAIN_CPUS_PER_GPU,
                             "mem_mb": 3000, "runtime": 30}
    rules["predict_test_set"] |= {"slurm_partition": "gpu", "cpus_per_gpu": 1,
                                  "mem_mb": 3000, "runtime": 30}
    rules["prepare_dataset"] |= {"cpus_per_task": 2, "mem_mb": 2000}
    rules["evaluate_test_set"] |= {"cpus_per_task": 1}
    profile |= {
        "slurm-status-command": "squeue",         # no accounting: sacct has nothing
        "slurm-init-seconds-before-status-checks": 5,
        "seconds-between-status-checks": 5,
        "slurm-keep-successful-logs": True,
        "latency-wait": 5,
        "jobs": 4,
        "retries": 0,       # resuming must come from the requeue, not a Snakemake retry
        "verbose": True,    # the executor logs each "sbatch call: ..."
    }
    assert profile["slurm-requeue"] is True and profile["executor"] == "slurm"
    ci = work / "workflow/profiles/slurm-ci"
    ci.mkdir()
    (ci / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return work


def _train_job(env: dict[str, str]) -> tuple[str, str] | None:
    """(job id, state) of the training job in the queue, or None."""
    for line in _out(["squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], env).splitlines():
        jobid, state, comment = line.split("|", 2)
        if comment.startswith("rule_train_model"):
            return jobid, state
    return None


def _saved_epoch(run_dir: Path) -> int:
    """The epoch of runs/<run>/last.pt (0 when there is none yet)."""
    import torch

    path = run_dir / "last.pt"
    if not path.is_file():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):  # try again next time
        return 0


def _stop(proc: subprocess.Popen) -> None:
    """Interrupt a Snakemake still running (it scancels its jobs on SIGINT, not on SIGTERM);
    kill it if it is still there after two minutes."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def _job_fields(env: dict[str, str], jobid: str) -> dict[str, str]:
    text = _out(["scontrol", "show", "job", "-o", jobid], env)
    return dict(f.split("=", 1) for f in text.split() if "=" in f)


def test_requeued_training_job_resumes(cluster: dict[str, str], scratch: Path) -> None:
    env = cluster
    start = time.monotonic()
    run_dir = scratch / "runs" / RUN
    targets = [f"runs/{RUN}/adapter.safetensors", f"results/runs/{RUN}/{TEST_SET}/predictions.json"]
    out_path = scratch / "snakemake.out"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *targets, "--profile", "workflow/profiles/slurm-ci",
             "--configfile", "params.yaml", "presets/smoke.yaml"],
            cwd=scratch, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)

    def tail() -> str:
        return out_path.read_text()[-6000:]

    def wait_for(what: str, check, deadline: float, poll: float = 0.5):
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            if proc.poll() is not None:
                pytest.fail(f"snakemake exited ({proc.returncode}) while waiting for {what}:\n"
                            f"{tail()}")
            time.sleep(poll)
        pytest.fail(f"timed out waiting for {what}:\n{tail()}")

    try:
        deadline = start + RUN_TIMEOUT_S

        def running_with_an_epoch():
            job = _train_job(env)
            if job and job[1] == "RUNNING" and _saved_epoch(run_dir) >= 1:
                return job[0]
            return None

        jobid = wait_for("the training job to run and save an epoch", running_with_an_epoch,
                         deadline)
        fields = _job_fields(env, jobid)
        _out(["scontrol", "requeue", jobid], env)
        seen_epoch = _saved_epoch(run_dir)
        requeued_at = time.monotonic()

        def pending_again():
            job = _train_job(env)
            return job if job and job[0] == jobid and job[1] in ("PENDING", "RUNNING") else None

        state = wait_for("the requeued job to be pending", pending_again, deadline)[1]
        # SLURM holds a requeued job on BeginTime (~2 min); StartTime=now releases it
        if state == "PENDING":
            _out(["scontrol", "update", f"jobid={jobid}", "StartTime=now"], env)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the workflow did not finish within {RUN_TIMEOUT_S} s:\n{tail()}")
    finally:
        _stop(proc)
    output = out_path.read_text()
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{tail()}"
    print(f"workflow with one requeue: {elapsed:.0f} s (requeued "
          f"{requeued_at - start:.0f} s in, at epoch {seen_epoch})")

    # finished: weights, predictions, and every epoch in the resume checkpoint
    assert (run_dir / "adapter.safetensors").stat().st_size > 0
    assert (scratch / f"results/runs/{RUN}/{TEST_SET}/predictions.json").is_file()
    import torch

    state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    assert [row["epoch"] for row in state["history"]] == list(range(1, EPOCHS + 1))

    # one job id, started twice; the log keeps both attempts after their headers
    log = (scratch / f"logs/train_model/{RUN}.log").read_text()
    headers = [m.groupdict() for m in re.finditer(
        r"^== \S+ rule=(?P<rule>\S+) attempt=(?P<attempt>\d+) slurm_job=(?P<job>\S+) "
        r"slurm_restart=(?P<restart>\d+) host=\S+$", log, re.MULTILINE)]
    assert [(h["rule"], h["attempt"], h["job"], h["restart"]) for h in headers] == [
        ("train_model", "1", jobid, "0"), ("train_model", "1", jobid, "1")], log
    first, second = re.split(r"^== .*$", log, flags=re.MULTILINE)[1:]
    assert "epoch 1/" in first and "resuming" not in first, first
    resumed = re.search(rf"resuming runs/{re.escape(RUN)} from epoch (\d+)", second)
    assert resumed, f"the requeued job did not resume from last.pt:\n{second}"
    epoch = int(resumed.group(1))
    assert seen_epoch <= epoch < EPOCHS, (seen_epoch, epoch)
    done = [int(e) for e in re.findall(rf"INFO samlora\.training\.loop: epoch (\d+)/{EPOCHS}:",
                                       second)]
    assert done == list(range(epoch + 1, EPOCHS + 1)), second  # only the epochs after K

    # what sbatch was given for the training job, and what SLURM holds it to
    calls = [line for line in output.splitlines() if "sbatch call:" in line
             and "rule_train_model" in line]
    assert len(calls) == 1, calls  # submitted once: the requeue kept the job
    call = calls[0]
    assert "--gpus=1" in call and f"--cpus-per-gpu={TRAIN_CPUS_PER_GPU}" in call, call
    assert "--cpus-per-task" not in call and "-p gpu" in call and "--requeue" in call, call
    assert fields.get("TresPerJob") == "gres:gpu:1", fields
    assert fields.get("CpusPerTres") == f"gres:gpu:{TRAIN_CPUS_PER_GPU}", fields
    assert fields.get("NumCPUs") == str(TRAIN_CPUS_PER_GPU), fields
    assert fields.get("Requeue") == "1", fields
    predict = [line for line in output.splitlines() if "sbatch call:" in line
               and "rule_predict_test_set" in line]
    assert predict and "--gpus=1" in predict[0] and "--cpus-per-gpu=1" in predict[0], predict
    prepare = [line for line in output.splitlines() if "sbatch call:" in line
               and "rule_prepare_dataset" in line]
    assert prepare and "--cpus-per-task=2" in prepare[0], prepare
    # the training step saw its allocation: 2 CPUs per GPU × 1 GPU
    assert f"using {TRAIN_CPUS_PER_GPU} CPU thread(s) (the SLURM allocation)" in second, second
