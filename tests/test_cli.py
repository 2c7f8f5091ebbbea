"""`python -m samlora`: the workflow steps and their error handling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from samlora.cli import build_parser, main

STEPS = ["download", "prepare", "checkpoint", "train", "predict", "evaluate", "aggregate", "report",
         "params", "export", "datasets", "split", "plan", "collect", "report-index", "human",
         "fidelity", "report-partial"]


def _listed_steps(help_text: str) -> list[str]:
    """Step names of the top-level ``--help``: the first word of each entry under ``STEP``.

    argparse indents the subcommand entries 4 spaces and their wrapped help deeper, so an
    entry is a line of exactly 4 spaces then a word (a long name stands alone on its line).
    """
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "STEP") + 1
    steps = []
    for line in lines[start:]:
        if not line.strip():
            break
        m = re.match(r" {4}(\S+)(?: {2,}\S|$)", line)
        if m:
            steps.append(m.group(1))
    return steps


def test_listed_steps_parser() -> None:
    text = ("usage: x [-h] STEP ...\n\npositional arguments:\n  STEP\n"
            "    train     train one method\n              with the split (train/test)\n"
            "    checkpoint\n              fetch a checkpoint\n\noptions:\n"
            "  -h, --help  show this help message and exit\n")
    assert _listed_steps(text) == ["train", "checkpoint"]


def test_help_lists_every_step(repo_root: Path) -> None:
    """Exactly the expected steps, each once: a name only mentioned in another step's help
    (``train`` in "train/test split", ``checkpoint`` in export's) does not count."""
    out = subprocess.run([sys.executable, "-m", "samlora", "--help"], cwd=repo_root,
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "80"}).stdout
    listed = _listed_steps(out)
    assert len(listed) == len(set(listed)), listed
    assert set(listed) == set(STEPS)


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


def test_checkpoint_step_fetches_and_verifies(repo_root: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    import hashlib

    source = tmp_path / "src" / "sam_vit_b_01ec64.pth"
    source.parent.mkdir()
    source.write_bytes(b"not really a checkpoint, but the step only checks size and hash")
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    models = tmp_path / "models"
    ck = "backbones.sam_vit_b.checkpoint"
    overrides = [f"{ck}.url={source.as_uri()}", f"{ck}.bytes={source.stat().st_size}"]
    params = ["--params", str(repo_root / "params.yaml")]
    args = ["checkpoint", *params, "--backbone", "sam_vit_b", "--models-dir", str(models)]
    # the official hash does not match this file: refused, nothing left behind
    assert main([*args, *overrides]) == 2
    assert "sha256" in caplog.text.lower()
    assert not (models / source.name).exists() and not list(models.glob("*.part"))
    assert main([*args, *overrides, f"{ck}.sha256={sha}"]) == 0
    assert (models / source.name).read_bytes() == source.read_bytes()
    caplog.clear()
    assert main(["checkpoint", *params, "--backbone", "sam_tiny"]) == 2
    assert "backbones.sam_tiny: no checkpoint and no Hub weights to fetch" in caplog.text
    assert main(["checkpoint", *params, "--backbone", "nope"]) == 2
    assert "unknown backbone 'nope'" in caplog.text


def test_train_help_lists_the_valid_values(repo_root: Path) -> None:
    import yaml

    from samlora.cli import build_parser

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    sub = build_parser()._subparsers._group_actions[0].choices["train"]  # noqa: SLF001
    text = " ".join(sub.format_help().split())
    for method in params["methods"]:
        assert method in text
    for dataset in params["data"]["datasets"]:
        assert dataset in text
    assert "the studies in params.yaml use 0, 1, 2" in text and "--run-name" in text


def test_errors_are_one_line_unless_debug(repo_root: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "samlora", "prepare", "--params",
           str(repo_root / "params.yaml"), "--dataset", "nosuch"]
    plain = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert [ln for ln in plain.stderr.splitlines() if "ERROR" in ln] == \
        [ln for ln in plain.stderr.splitlines() if ln.strip()][-1:]
    for extra, env in (([ "--debug"], {}), ([], {"SAMLORA_DEBUG": "1"})):
        res = subprocess.run([*cmd, *extra], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, env={**os.environ, **env})
        assert res.returncode != 0 and "Traceback" in res.stderr and "nosuch" in res.stderr
