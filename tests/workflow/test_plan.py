"""Snakemake plans every study of params.yaml; shared runs train once; the SLURM profile is
well formed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .conftest import job_counts, snakemake

#: Training runs per study, counted by hand from params.yaml (methods x protocols x seeds)
#: and, for the whole plan, each shared run once.
ALONE = {"topolora_benchmark": 5 * 5 * 3, "topolora_components": 5 * 3,
         "topolora_rank": 4 * 3, "sam2lora_vessel": 7 * 3, "head_to_head": 7 * 2 * 3}
#: Every enabled study at once: 75 (benchmark) + 12 (components: topolora_sam on DRIVE is
#: the benchmark's) + 3 (transfer: the clDice-free variant) + 9 (rank: r=8 is topolora_sam)
#: + 21 (clDice weight: 0.5 is topolora_sam, 0 on DRIVE is topolora_sam_no_cldice) + 3 x 21
#: (vessel, disc, cup unions) + 18 (placement) + 36 (loss: BCE+Dice+FT is sam2lora's
#: encoder+decoder placement) + 24 (head-to-head: the DRIVE runs of five methods are
#: the benchmark's, decoder_only's the components') + 3 (fidelity: topolora_sam-ref; the
#: corrected runs are the benchmark's) + 3 (fidelity_sam2lora: sam2lora-ref; sam2lora on
#: the vessel union is the placement study's encoder+decoder run)
ALL_RUNS = 75 + 12 + 3 + 9 + 21 + 3 * 21 + 18 + 36 + 24 + 3 + 3


def test_each_study_plans_its_own_runs(workdir: Path) -> None:
    for study, runs in ALONE.items():
        res = snakemake(workdir, "-n", "--cores", "1", study)
        assert res.returncode == 0, res.stderr
        counts = job_counts(res.stdout + res.stderr)
        assert counts["train_model"] == runs, study
        # main_results and samlora_results, + its paper's report
        paper_study = study.startswith(("topolora", "sam2lora"))
        assert counts["aggregate_study"] == 1 and counts["render_report"] == 2 + paper_study


def test_all_studies_share_runs_and_unions_list_every_member(workdir: Path) -> None:
    res = snakemake(workdir, "-n", "--cores", "1", "all")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    counts = job_counts(out)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    enabled = params["studies"]["enabled"]
    assert counts["train_model"] == ALL_RUNS
    assert counts["aggregate_study"] == len(enabled) and counts["report_index"] == 1
    trained = re.findall(r"output: runs/([^\s,]+)/adapter\.safetensors", out)
    assert len(trained) == len(set(trained)) == ALL_RUNS  # each shared run once
    assert "topolora_sam__drive__seed0" in trained
    assert "topolora_sam-r8-alpha16__drive__seed0" not in trained  # r=8 is topolora_sam
    union = "sam2lora-r32-alpha64__vessel_union__seed0"
    block = out.split(f"output: runs/{union}/adapter.safetensors")[0].rsplit("rule ", 1)[1]
    for member in ("chase_db1", "drive", "fives", "hrf", "stare"):
        assert f"data/processed/{member}/index.csv" in block, member
    for backbone in ("sam_vit_b", "sam2_hiera_b_plus"):
        assert f"models/pretrained/{params['backbones'][backbone]['checkpoint']['file']}" in out


def test_demo_preset_plans_its_scaled_studies(workdir: Path) -> None:
    res = snakemake(workdir, "-n", "--cores", "1", "--configfile", "params.yaml",
                    "presets/demo.yaml")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    # 4 LiteMedSAM methods on DRIVE (benchmark, shared by transfer) + the union's
    # decoder_only_tiny + the sweep's two decoder_only_tiny variants on DRIVE (0 is the
    # method itself) + topolora_sam_tiny and its -ref run (the fidelity study)
    assert counts["train_model"] == 4 + 1 + 2 + 2 and counts["aggregate_study"] == 5
    assert counts["predict_test_set"] == 4 + 8 + 3 + 2 + 2
    assert "runs/topolora_sam_tiny-ref__drive__seed0/adapter.safetensors" in res.stdout
    assert "runs/decoder_only_tiny__vessel_union__seed0/adapter.safetensors" in res.stdout
    assert "models/pretrained/lite_medsam.pth" in res.stdout


def test_one_study_by_config(workdir: Path) -> None:
    res = snakemake(workdir, "-n", "--cores", "1", "--config", "study=topolora_rank")
    assert res.returncode == 0, res.stderr
    assert job_counts(res.stdout + res.stderr)["train_model"] == ALONE["topolora_rank"]


def test_slurm_profile_plans_with_gpu_training(workdir: Path) -> None:
    res = snakemake(workdir, "-n", "--profile", "workflow/profiles/slurm", "topolora_rank")
    assert res.returncode == 0, res.stderr
    assert job_counts(res.stdout + res.stderr)["train_model"] == ALONE["topolora_rank"]
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


def test_lint_is_clean(workdir: Path) -> None:
    """`snakemake --lint`: every rule names its conda environment and functions live in
    common.smk only. One lint stays on purpose: shell commands read PARAMS_ARGS (the params
    files to compose) directly; as a `params:` entry, a new preset file name would rerun
    every job, downloads included, although the values a job reads are tracked already."""
    res = snakemake(workdir, "--lint", "--cores", "1")  # exits 1 when it lists any lint
    out = res.stdout + res.stderr
    assert "Error" not in out, out[-3000:]
    lints = [line.strip() for line in out.splitlines() if line.strip().startswith("* ")]
    assert lints and all(
        line == "* Shell command directly uses variable PARAMS_ARGS from outside of the rule:"
        for line in lints), out[-3000:]


def test_config_overrides_and_moved_data_folders_are_refused(workdir: Path) -> None:
    """`--config train.lr=…` would change Snakemake's params but never reach the steps, and
    the rules name data/raw and data/processed: both are one-line errors, not silent."""
    res = snakemake(workdir, "-n", "all", "--config", "train={lr: 1.0e-5}")
    assert res.returncode != 0
    assert "--config train: the steps read params.yaml" in res.stdout + res.stderr
    (workdir / "moved.yaml").write_text("data:\n  processed_dir: /elsewhere\n")
    res = snakemake(workdir, "-n", "all", "--configfile", "params.yaml", "moved.yaml")
    assert res.returncode != 0
    assert "data.processed_dir: '/elsewhere'" in res.stdout + res.stderr
    assert snakemake(workdir, "-n", "all", "--config", "study=fidelity").returncode == 0


def test_baseline_weights_are_fetched_by_the_localrule_before_training(workdir: Path) -> None:
    """The benchmark's baselines read Hub weights fetched into models/pretrained/hub/ by
    fetch_checkpoint (on the submitting host); each source once, every run waits for it,
    and the training and prediction commands run offline."""
    res = snakemake(workdir, "-n", "--cores", "1", "-p", "topolora_benchmark")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    fetched = set(re.findall(r"output: models/pretrained/(\S+)", out))
    assert {("hub/smp-hub--resnet34.imagenet@7a57b34f723329ff020b3f8bc41771163c519d0c/"
             "manifest.json"),
            "hub/nvidia--mit-b0@25ce79d97e6d9d509ed12e17cb2eb89b0a83a2dc/manifest.json",
            "hub/facebook--mask2former-swin-tiny-ade-semantic@main/manifest.json"} <= fetched
    assert job_counts(out)["fetch_checkpoint"] == len(fetched)
    block = out.split("output: runs/segformer_b0__drive__seed0/adapter.safetensors")[0]
    assert "models/pretrained/hub/nvidia--mit-b0@" in block.rsplit("rule ", 1)[1]
    assert "env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -m samlora train" in out
    assert "env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python -m samlora predict" in out


def test_snakemake_reads_params_as_yaml_1_2_like_the_steps(workdir: Path) -> None:
    """`dvc exp run -S train.lr=1e-5` writes `lr: 1e-05`: YAML 1.1 (PyYAML, Snakemake's
    own reader) makes it a string, which the schema refuses; the workflow reads the
    files again as YAML 1.2, as the steps do."""
    params = workdir / "params.yaml"
    text = params.read_text()
    assert "\n  lr: 1.0e-4" in text
    params.write_text(text.replace("\n  lr: 1.0e-4", "\n  lr: 1e-05", 1))
    assert yaml.safe_load(params.read_text())["train"]["lr"] == "1e-05"  # the trap
    res = snakemake(workdir, "-n", "--cores", "1", "topolora_rank")
    assert res.returncode == 0, res.stderr[-2000:]
