"""Training on real DRIVE images: the loss falls, and a killed run resumes to the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

OVERRIDES = ["backbones.sam_tiny.img_size=128", "train.augment=null", "train.batch_size=4",
             "train.grad_accum=2", "train.num_workers=0", "train.lr=2e-3", "train.log_every=1"]


@pytest.fixture(scope="module")
def processed(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from samlora.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("processed")
    prepare_dataset("drive", mirror / "DRIVE", out / "drive", {"red_threshold": 0.1, "radius": 3})
    return out


def _cmd(repo_root: Path, processed: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "samlora", "train",
            "--params", str(repo_root / "params.yaml"),
            "--params", str(repo_root / "presets/demo.yaml"),
            "--method", "topolora_sam", "--train-set", "drive", "--seed", "0", "--out", str(out),
            f"data.processed_dir={processed}", f"train.epochs={epochs}", *OVERRIDES]


def _history(run: Path) -> list[dict]:
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    return state["history"]


def test_training_loss_falls_and_writes_run_files(repo_root: Path, processed: Path,
                                                  tmp_path: Path) -> None:
    run = tmp_path / "run"
    subprocess.run(_cmd(repo_root, processed, run, 4), check=True, cwd=tmp_path,
                   capture_output=True, timeout=300)
    hist = _history(run)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert all("val_dice" in h for h in hist)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["train"]["lr"] == 2e-3 and cfg["method"] == "topolora_sam"
    assert (run / "dvclive" / "metrics.json").is_file()


def test_killed_run_resumes_to_the_same_weights(repo_root: Path, processed: Path,
                                                tmp_path: Path) -> None:
    epochs = 6
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cmd(repo_root, processed, ref, epochs), check=True, cwd=tmp_path,
                   capture_output=True, timeout=300)
    proc = subprocess.Popen(_cmd(repo_root, processed, killed, epochs), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (killed / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed / "last.pt").exists(), "the run never wrote a checkpoint"
    assert not (killed / "adapter.safetensors").exists(), "the run finished before the kill"
    done_before = len(_history(killed))
    assert 1 <= done_before < epochs
    res = subprocess.run(_cmd(repo_root, processed, killed, epochs), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"from epoch {done_before}" in res.stderr
    assert [h["epoch"] for h in _history(killed)] == list(range(1, epochs + 1))
    a, b = load_file(ref / "adapter.safetensors"), load_file(killed / "adapter.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
