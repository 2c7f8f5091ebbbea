"""Evaluation-only prompt settings rerun predict and evaluate, never train.

A real Snakemake run of sam2lora (tiny SAM 2.1, 1 epoch, a DRIVE subset) to its per-image
metrics, then edits of the same preset file, as a user would edit params:
``methods.sam2lora.prompts.eval_modes`` plans predict + evaluate only, and running that
plan rewrites the predictions with the new modes and leaves the weights untouched; an
edit of ``prompts.train_points`` (read by training) plans the training job again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import job_counts, snakemake

PRESET = "prompts.yaml"
RESULT = "results/runs/sam2lora__drive__seed0/drive"
RUN = "runs/sam2lora__drive__seed0"
TARGET = f"{RESULT}/metrics_per_image.csv"


def _write_preset(workdir: Path, mirror: Path, eval_modes: list[str],
                  train_points: int = 20) -> None:
    preset = {
        "studies": {"enabled": ["prompts"],
                    "prompts": {"methods": ["sam2lora"], "seeds": [0],
                                "protocols": [{"train": "drive", "test": ["drive"]}]}},
        "data": {"mirror": str(mirror), "datasets": ["drive"], "allow_subset": True},
        "backbones": {"sam2_tiny": {"img_size": 64}},
        "methods": {"sam2lora": {"backbone": "sam2_tiny",
                                 "prompts": {"train_points": train_points,
                                             "eval_modes": eval_modes}}},
        "train": {"epochs": 1, "batch_size": 2, "grad_accum": 1, "num_workers": 0,
                  "device": "cpu"},
    }
    (workdir / PRESET).write_text(yaml.safe_dump(preset, sort_keys=False))


def _smk(workdir: Path, *args: str, timeout: int = 120):
    res = snakemake(workdir, TARGET, "--cores", "1", "--configfile", "params.yaml", PRESET,
                    *args, timeout=timeout)
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-3000:])
    return res.stdout + res.stderr


@pytest.mark.slow  # a real chain of 5 jobs, then 2 (~60 s on 2 shared cores)
def test_eval_modes_rerun_predict_not_train(workdir: Path, drive_subset) -> None:
    mirror = drive_subset(("01", "02", "21", "22")).parent
    _write_preset(workdir, mirror, ["none", "1pt"])
    _smk(workdir, timeout=300)
    weights = workdir / RUN / "adapter.safetensors"
    trained = weights.stat().st_mtime_ns
    assert json.loads((workdir / RESULT / "predictions.json").read_text())["prompt_modes"] == \
        ["none", "1pt"]
    assert "Nothing to be done" in _smk(workdir, "-n")

    _write_preset(workdir, mirror, ["none", "1pt", "box"])
    counts = job_counts(_smk(workdir, "-n"))
    assert counts == {"evaluate_test_set": 1, "predict_test_set": 1, "total": 2}

    _smk(workdir, timeout=300)
    assert weights.stat().st_mtime_ns == trained
    assert json.loads((workdir / RESULT / "predictions.json").read_text())["prompt_modes"] == \
        ["none", "1pt", "box"]
    table = pd.read_csv(workdir / TARGET)
    assert sorted(table["prompt"].unique()) == ["1pt", "box", "none"]
    assert len(list((workdir / RESULT / "probs" / "box").glob("*.png"))) == 2
    assert "Nothing to be done" in _smk(workdir, "-n")

    _write_preset(workdir, mirror, ["none", "1pt", "box"], train_points=10)
    counts = job_counts(_smk(workdir, "-n"))
    assert counts["train_model"] == 1 and counts["predict_test_set"] == 1
    assert "prepare_dataset" not in counts and "download_dataset" not in counts
