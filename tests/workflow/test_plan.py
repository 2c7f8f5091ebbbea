"""Snakemake plans the full study grid; the SLURM profile is well formed."""

from __future__ import annotations

from pathlib import Path

import yaml

from .conftest import job_counts, snakemake


def test_full_params_plans_the_whole_grid(workdir: Path) -> None:
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    assert sorted(params["study"]["methods"]) == sorted(params["methods"])  # every method
    res = snakemake(workdir, "-n", "--cores", "1")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    # 2 datasets; 2 checkpoints (SAM ViT-B, SAM 2.1 Hiera-B+: the baselines and tiny
    # backbones have none); 13 methods x 1 train set x 3 seeds; x 2 test sets for
    # predict/evaluate
    assert counts == {"download_dataset": 2, "prepare_dataset": 2, "fetch_checkpoint": 2,
                      "train_model": 39, "predict_test_set": 78, "evaluate_test_set": 78,
                      "aggregate_results": 1, "render_report": 1, "all": 1, "total": 204}
    out = res.stdout + res.stderr
    for backbone in ("sam_vit_b", "sam2_hiera_b_plus"):
        assert f"models/pretrained/{params['backbones'][backbone]['checkpoint']['file']}" in out
    for method in params["methods"]:
        assert f"runs/main/{method}/drive/seed2/adapter.safetensors" in out, method


def test_demo_preset_plans_one_seed(workdir: Path) -> None:
    res = snakemake(workdir, "-n", "--cores", "1", "--configfile", "params.yaml",
                    "presets/demo.yaml")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert counts["train_model"] == 2 and counts["predict_test_set"] == 4
    assert "runs/demo/topolora_sam/drive/seed0/adapter.safetensors" in res.stdout + res.stderr


def test_slurm_profile_plans_with_gpu_training(workdir: Path) -> None:
    res = snakemake(workdir, "-n", "--profile", "workflow/profiles/slurm")
    assert res.returncode == 0, res.stderr
    assert job_counts(res.stdout + res.stderr)["total"] == 204
    profile = yaml.safe_load((workdir / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["set-resources"]["train_model"]["gpu"] == 1
    snakefile = (workdir / "Snakefile").read_text()
    local = snakefile.split("localrules:", 1)[1].split("rule ", 1)[0]
    assert "download_dataset" in local and "render_report" in local
    assert "train_model" not in local


def test_invalid_params_fail_validation(workdir: Path) -> None:
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"]["learning_rate"] = 1.0
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    res = snakemake(workdir, "-n", "--cores", "1")
    assert res.returncode != 0
    assert "learning_rate" in res.stdout + res.stderr
