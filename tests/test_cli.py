"""`python -m samlora`: the workflow steps and their error handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from samlora.cli import build_parser, main

STEPS = ["download", "prepare", "train", "predict", "evaluate", "aggregate", "report", "params"]


def test_help_lists_every_step(repo_root: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "samlora", "--help"], cwd=repo_root,
                         capture_output=True, text=True, check=True).stdout
    for name in STEPS:
        assert name in out


def test_each_step_takes_params_and_overrides() -> None:
    parser = build_parser()
    args = parser.parse_args(["train", "--params", "params.yaml", "--params", "presets/demo.yaml",
                              "--method", "topolora_sam", "--train-set", "drive", "--seed", "1",
                              "--out", "runs/x", "train.lr=3e-4", "train.epochs=2"])
    assert args.overrides == ["train.lr=3e-4", "train.epochs=2"]
    assert [str(p) for p in args.params] == ["params.yaml", "presets/demo.yaml"]


def test_bad_override_exits_with_message(repo_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    code = main(["prepare", "--params", str(repo_root / "params.yaml"), "--dataset", "drive",
                 "data.fovv.radius=2"])
    assert code == 2
    assert "data.fovv" in caplog.text
