"""The whole chain through `dvc repro` (which calls the Snakemake targets) on real data.

One run of the smoke preset, then the change-detection contract: after an edit of
``train.lr`` both DVC and Snakemake see the training stage and everything after it as out of
date, and data preparation as up to date.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import job_counts, snakemake, venv_env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def reproduced(repo_root: Path, mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch repository after one `dvc repro` with the smoke preset."""
    import shutil

    work = tmp_path_factory.mktemp("repo")
    for name in ["Snakefile", "params.yaml", "presets", "workflow", "notebooks", "dvc.yaml",
                 "src", ".dvc", ".dvcignore", ".gitignore"]:
        src = repo_root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    shutil.rmtree(work / ".dvc" / "tmp", ignore_errors=True)
    preset = yaml.safe_load((repo_root / "tests/fixtures/smoke.yaml").read_text())
    preset["data"] = {"mirror": str(mirror)}
    (work / "presets" / "smoke.yaml").write_text(yaml.safe_dump(preset))
    env = venv_env() | {"SAMLORA_PRESET": "presets/smoke.yaml"}
    _run(["git", "init", "-q"], work, env)
    _run(["git", "add", "-A"], work, env)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], work, env)
    _run(["dvc", "repro"], work, env, timeout=900)
    return work


def test_repro_leaves_every_artifact(reproduced: Path) -> None:
    w = reproduced
    drive = pd.read_csv(w / "data/processed/drive/index.csv")
    assert drive["split"].value_counts().to_dict() == {"train": 20, "test": 20}
    chase = pd.read_csv(w / "data/processed/chase_db1/index.csv")
    assert chase["split"].value_counts().to_dict() == {"train": 20, "test": 8}
    for method in ("topolora_sam", "decoder_only"):
        run = w / f"runs/smoke/{method}/drive/seed0"
        assert (run / "adapter.safetensors").stat().st_size > 0
        assert yaml.safe_load((run / "config.yaml").read_text())["method"] == method
        for test_set, n in (("drive", 20), ("chase_db1", 8)):
            res = w / f"results/smoke/{method}/drive/seed0/{test_set}"
            per_image = pd.read_csv(res / "metrics_per_image.csv")
            assert len(per_image) == n
            assert per_image["dice"].between(0, 1).all()
            assert len(list((res / "probs").glob("*.png"))) == n
    summary = pd.read_csv(w / "results/summary.csv")
    assert len(summary) == 4  # 2 methods x 2 test sets
    metrics = json.loads((w / "results/metrics.json").read_text())
    assert metrics
    html = (w / "reports/main_results.html").read_text()
    assert "clDice" in html and "<img" in html


def test_params_edit_invalidates_train_and_after_only(reproduced: Path) -> None:
    w = reproduced
    env = venv_env() | {"SAMLORA_PRESET": "presets/smoke.yaml"}
    status = json.loads(_run(["dvc", "status", "--json"], w, env))
    assert status == {}, status
    params = yaml.safe_load((w / "params.yaml").read_text())
    params["train"]["lr"] = 3.0e-4
    (w / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(_run(["dvc", "status", "--json"], w, env))
    assert set(status) == {"train", "evaluate", "report"}
    res = snakemake(w, "-n", "--cores", "1", "--configfile", "params.yaml", "presets/smoke.yaml")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert "prepare_dataset" not in counts and "download_dataset" not in counts
    assert counts["train_model"] == 2 and counts["predict_test_set"] == 4
    assert counts["evaluate_test_set"] == 4 and counts["render_report"] == 1
