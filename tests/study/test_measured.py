"""Step-time rows from Snakemake benchmark files: known answers on the studies of
params.yaml (DRIVE's split file gives the image counts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from samlora.config import load_config
from samlora.study import cost
from samlora.study.measured import rows_from_benchmarks
from samlora.study.studies import expand

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _tsv(path: Path, *seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:01\t1\t1\t1\t1\t0\t0\t100\t{s}\n"
                                     for s in seconds))


@pytest.fixture
def components(repo_root: Path):
    cfg = load_config([repo_root / "params.yaml"])
    studies = {"topolora_components": expand(cfg)["topolora_components"]}
    runs = {r.method: r for r in studies["topolora_components"].runs if r.seed == 0}
    return studies, runs


def test_training_and_prediction_jobs_give_per_image_step_times(components, tmp_path):
    studies, runs = components
    lora, frozen = runs["lora_only"], runs["decoder_only"]
    images = sum(cost.split_counts(lora, d)[0] for d in lora.train_sets)
    epochs = int(lora.train["epochs"])
    bench = tmp_path / "benchmarks"
    _tsv(bench / "train_model" / f"{lora.name}.tsv", images * epochs * 2.0,
         images * epochs * 4.0)  # two repeats: their mean, 3.0
    _tsv(bench / "train_model" / f"{frozen.name}.tsv", images * epochs * 0.5)
    tests = cost.split_counts(lora, "drive")[1]
    _tsv(bench / "predict_test_set" / lora.name / "drive.tsv", tests * 0.25)
    rows, notes = rows_from_benchmarks(bench, studies, "cuda", "NVIDIA H100")
    assert notes == []
    (row,) = rows
    assert (row["backbone"], row["img_size"], row["device"]) == ("sam_vit_b", 1024, "cuda")
    assert (row["train_s"], row["decoder_s"], row["encode_s"]) == (3.0, 0.5, 0.25)
    assert row["device_name"] == "NVIDIA H100 (Snakemake benchmarks of 3 jobs)"
    t = cost.step_time([{k: str(v) for k, v in row.items()}], "sam_vit_b", 1024)
    assert t.device.startswith("cuda: NVIDIA H100") and t.train_s == 3.0


def test_a_figure_no_job_measured_comes_from_the_table_or_the_row_is_left_out(
        components, tmp_path):
    studies, runs = components
    lora = runs["lora_only"]
    bench = tmp_path / "benchmarks"
    _tsv(bench / "train_model" / f"{lora.name}.tsv", 100.0)
    rows, notes = rows_from_benchmarks(bench, studies, "cuda", "G")
    assert rows == [] and "no job measured encode_s, decoder_s" in notes[0]
    prior = [{"backbone": "sam_vit_b", "img_size": "1024", "device": "cuda",
              "train_s": "9", "encode_s": "0.3", "decoder_s": "0.02"}]
    rows, notes = rows_from_benchmarks(bench, studies, "cuda", "G", prior)
    assert notes == [] and (rows[0]["encode_s"], rows[0]["decoder_s"]) == (0.3, 0.02)
    assert rows[0]["train_s"] != 9


def test_bench_cost_writes_the_rows_into_the_table(components, repo_root, tmp_path):
    _, runs = components
    lora = runs["lora_only"]
    bench = tmp_path / "benchmarks"
    _tsv(bench / "train_model" / f"{lora.name}.tsv", 50.0)
    _tsv(bench / "predict_test_set" / lora.name / "drive.tsv", 5.0)
    table = tmp_path / "step_times.csv"
    table.write_text("backbone,arch,img_size,device,device_name,train_s,encode_s,decoder_s,"
                     "steps,measured\nsam_vit_b,vit_b,1024,cuda,G,9,0.3,0.02,2,2026-01-01\n")
    res = subprocess.run([sys.executable, str(repo_root / "benchmarks/bench_cost.py"),
                          "--from-benchmarks", str(bench), "--device-name", "G2",
                          "--table", str(table), "--params", str(repo_root / "params.yaml")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = cost.read_step_times(table)
    assert len(rows) == 1 and rows[0]["device_name"].startswith("G2 (Snakemake benchmarks")
    assert float(rows[0]["decoder_s"]) == 0.02
