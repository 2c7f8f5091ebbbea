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

# params.yaml's augmentation (flips + rot90) stays on: resume must be exact with it.
OVERRIDES = ["backbones.sam_tiny.img_size=128", "train.batch_size=4", "train.grad_accum=2",
             "train.lr=2e-3", "train.log_every=1"]


@pytest.fixture(scope="module")
def processed(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from samlora.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("processed")
    prepare_dataset("drive", mirror / "DRIVE", out / "drive", {"red_threshold": 0.1, "radius": 3})
    return out


def _cmd(repo_root: Path, processed: Path, out: Path, epochs: int, workers: int = 0,
         *extra: str) -> list[str]:
    return [sys.executable, "-m", "samlora", "train",
            "--params", str(repo_root / "params.yaml"),
            "--params", str(repo_root / "presets/demo.yaml"),
            "--method", "topolora_sam_tiny", "--train-set", "drive", "--seed", "0", "--out", str(out),
            f"data.processed_dir={processed}", f"train.epochs={epochs}",
            f"train.num_workers={workers}", *OVERRIDES, *extra]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "adapter.safetensors")


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensor(s) differ, e.g. {differ[:3]}"


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
    assert cfg["train"]["lr"] == 2e-3 and cfg["method"] == "topolora_sam_tiny"
    assert (run / "dvclive" / "metrics.json").is_file()


@pytest.mark.slow  # three real training runs: ~20 s here (each precision)
@pytest.mark.parametrize("precision", ["fp32", "amp"])  # amp: bf16 autocast on CPU
def test_killed_run_resumes_to_exactly_the_weights_of_an_uninterrupted_run(
        repo_root: Path, processed: Path, tmp_path: Path, precision: str) -> None:
    """Augmentation on; the uninterrupted reference loads in the main process, the killed
    and resumed run with 2 worker processes: all three must give the same bits."""
    epochs = 4
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    prec = f"train.precision={precision}"
    subprocess.run(_cmd(repo_root, processed, ref, epochs, 0, prec), check=True, cwd=tmp_path,
                   capture_output=True, timeout=300)
    proc = subprocess.Popen(_cmd(repo_root, processed, killed, epochs, 2, prec), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (killed / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed / "last.pt").exists(), "the run never wrote a checkpoint"
    assert not (killed / "adapter.safetensors").exists(), "the run finished before the kill"
    assert not (killed / "config.yaml").exists(), "config.yaml is written only on success"
    done_before = len(_history(killed))
    assert 1 <= done_before < epochs
    res = subprocess.run(_cmd(repo_root, processed, killed, epochs, 2, prec), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"from epoch {done_before}" in res.stderr
    assert [h["epoch"] for h in _history(killed)] == list(range(1, epochs + 1))
    assert _history(killed) == _history(ref)  # losses and val Dice of every epoch too
    _assert_identical(_weights(ref), _weights(killed))
    # train.select (val_dice) keeps the same epoch, carried across the kill in last.pt
    from safetensors import safe_open

    def selected(run: Path) -> int:
        with safe_open(str(run / "adapter.safetensors"), framework="pt") as f:
            return int(f.metadata()["selected_epoch"])

    dices = [h["val_dice"] for h in _history(ref)]
    assert selected(killed) == selected(ref) == 1 + dices.index(max(dices))


@pytest.mark.slow  # four real training runs: ~25 s here
def test_an_edited_lr_trains_afresh_instead_of_resuming(repo_root: Path, processed: Path,
                                                        tmp_path: Path) -> None:
    """Rerunning a finished run folder with another train.lr (what Snakemake, dvc exp run
    -S and --forcerun do) must train the new run from scratch, not resume the old one."""
    run, fresh = tmp_path / "run", tmp_path / "fresh"
    subprocess.run(_cmd(repo_root, processed, run, 2), check=True, cwd=tmp_path,
                   capture_output=True, timeout=300)
    old_weights, old_history = _weights(run), _history(run)
    res = subprocess.run(_cmd(repo_root, processed, run, 2, 0, "train.lr=1e-5"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resuming" not in res.stderr
    assert "different run" in res.stderr and "starting afresh" in res.stderr
    history = _history(run)
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[0]["lr"] == pytest.approx(1e-5) and old_history[0]["lr"] == pytest.approx(2e-3)
    new_weights = _weights(run)
    assert any(not torch.equal(old_weights[k], new_weights[k]) for k in old_weights)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 1e-5
    # ... and exactly what the same run gives in a folder of its own
    subprocess.run(_cmd(repo_root, processed, fresh, 2, 0, "train.lr=1e-5"), check=True,
                   cwd=tmp_path, capture_output=True, timeout=300)
    _assert_identical(_weights(fresh), new_weights)
    # a setting that cannot change the weights (log_every) resumes the finished run instead
    res = subprocess.run(_cmd(repo_root, processed, run, 2, 0, "train.lr=1e-5",
                              "train.log_every=5"), cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "resuming" in res.stderr and "from epoch 2" in res.stderr
    _assert_identical(_weights(fresh), _weights(run))
