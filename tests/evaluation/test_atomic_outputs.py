"""A step's outputs appear whole or not at all, its config comes with them, and a run's
identity comes from the run, not from folder names."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.evaluation import predict as predict_mod
from samlora.evaluation.predict import predict_dataset
from samlora.steps import run_evaluate, run_predict
from samlora.training import loop
from samlora.training.loop import train_run

REPO = Path(__file__).resolve().parents[2]


def _cfg(processed: Path, **train: object) -> object:
    cfg = load_config([REPO / "params.yaml"])
    return OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(processed.parent)},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "methods": {"topolora_sam": {"backbone": "sam_tiny", "adapter": {"hidden": 8}}},
        "train": {"epochs": 1, "batch_size": 1, "grad_accum": 1, "num_workers": 0,
                  "device": "cpu", **train},
    })


@pytest.fixture(scope="module")
def trained(drive_processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run in a folder outside runs/<study>/<method>/<train>/seed<k>."""
    run = tmp_path_factory.mktemp("elsewhere") / "my-first-run"
    train_run(_cfg(drive_processed), "topolora_sam", "drive", 0, run, models_dir=run)
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_evaluate_takes_the_run_identity_from_the_run(trained: Path, drive_processed: Path,
                                                      tmp_path: Path) -> None:
    cfg = _cfg(drive_processed)
    out = tmp_path / "results"
    run_predict(cfg, argparse.Namespace(run=trained, test_set="drive", out=out,
                                        models_dir=trained))
    run_evaluate(cfg, argparse.Namespace(pred=out, test_set="drive"))
    table = pd.read_csv(out / "metrics_per_image.csv", dtype=str)
    assert set(table["train_set"]) == {"drive"}  # not the folder's parent, "elsewhere…"
    assert set(table["method"]) == {"topolora_sam"} and set(table["seed"]) == {"0"}
    assert json.loads((out / "metrics.json").read_text())["meta"]["train_set"] == "drive"
    assert yaml.safe_load((out / "evaluate_config.yaml").read_text())["train_set"] == "drive"
    assert yaml.safe_load((out / "predict_config.yaml").read_text())["test_set"] == "drive"


def test_a_failed_predict_leaves_the_previous_outputs_whole(
        trained: Path, drive_processed: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results"
    predict_dataset(trained, drive_processed, out, trained, device="cpu",
                    config={"run": "first"})
    before = _snapshot(out)
    written = []
    real = predict_mod.write_prob_png

    def fail_on_second(path: Path, prob: object) -> None:
        if written:
            raise OSError(28, "No space left on device", str(path))
        written.append(path)
        real(path, prob)

    monkeypatch.setattr(predict_mod, "write_prob_png", fail_on_second)
    with pytest.raises(OSError):
        predict_dataset(trained, drive_processed, out, trained, device="cpu",
                        config={"run": "second"})
    assert _snapshot(out) == before  # the old maps, predictions.json and config, unmixed
    assert sorted(p.name for p in out.iterdir()) == ["predict_config.yaml", "predictions.json",
                                                     "probs"]


def test_a_killed_predict_never_leaves_a_mix(trained: Path, drive_processed: Path,
                                             tmp_path: Path) -> None:
    """SIGKILL part-way through a predict over an earlier one: whatever is left is either
    the earlier complete set or no predictions.json, never new maps under the old record."""
    out = tmp_path / "results"
    predict_dataset(trained, drive_processed, out, trained, device="cpu")
    old_maps = _snapshot(out / "probs")
    old_record = (out / "predictions.json").read_bytes()
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "import samlora.evaluation.predict as m\n"
            "real = m.write_prob_png\n"
            "def slow(path, prob):\n"
            "    real(path, prob); Path(sys.argv[1]).touch(); time.sleep(30)\n"
            "m.write_prob_png = slow\n"
            "m.predict_dataset(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]),\n"
            "                  Path(sys.argv[2]), device='cpu')\n")
    flag = tmp_path / "one-map-written"
    proc = subprocess.Popen([sys.executable, "-c", code, str(flag), str(trained),
                             str(drive_processed), str(out)])
    deadline = time.time() + 120
    while not flag.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert flag.exists(), "the predict never wrote a map"
    assert (out / "predictions.json").read_bytes() == old_record
    assert _snapshot(out / "probs") == old_maps
    # the next predict clears what the killed one left and publishes a whole new set
    predict_dataset(trained, drive_processed, out, trained, device="cpu")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_a_failed_train_keeps_the_finished_runs_config(trained: Path, drive_processed: Path,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Retraining a finished run folder with an edited lr fails mid-epoch: config.yaml and the
    weights still describe the finished run, and predict still works on it."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = {n: (run / n).read_bytes() for n in ("config.yaml", "adapter.safetensors")}

    def boom(*args: object, **kwargs: object) -> float:
        raise RuntimeError("killed mid-epoch")

    monkeypatch.setattr(loop, "train_one_epoch", boom)
    with pytest.raises(RuntimeError, match="mid-epoch"):
        train_run(_cfg(drive_processed, lr=1e-5), "topolora_sam", "drive", 0, run,
                  models_dir=run)
    assert {n: (run / n).read_bytes() for n in before} == before
    monkeypatch.undo()
    assert predict_dataset(run, drive_processed, tmp_path / "res", run, device="cpu")
