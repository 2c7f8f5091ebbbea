"""`plan --cost`: step-time lookup, the per-run cost model, case counts, and the table for
every study of params.yaml."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from samlora.config import load_config
from samlora.study import cost
from samlora.study.studies import expand


def _rows(**extra):
    base = [
        {"backbone": "sam_vit_b", "img_size": "1024", "device": "cpu", "device_name": "x",
         "train_s": "20", "encode_s": "6", "decoder_s": "0.5"},
        {"backbone": "sam_vit_b", "img_size": "512", "device": "cuda", "device_name": "H",
         "train_s": "0.2", "encode_s": "0.05", "decoder_s": "0.01"},
    ]
    return base + [dict(r) for r in extra.get("more", [])]


def test_step_time_prefers_gpu_and_scales_by_pixels() -> None:
    t = cost.step_time(_rows(), "sam_vit_b", 1024)
    assert t.device == "cuda: H" and t.scaled
    assert t.train_s == pytest.approx(0.2 * 4) and t.encode_s == pytest.approx(0.2)
    cpu_only = [r for r in _rows() if r["device"] == "cpu"]
    exact = cost.step_time(cpu_only, "sam_vit_b", 1024)
    assert (exact.train_s, exact.scaled, exact.device) == (20.0, False, "cpu: x")
    assert cost.step_time(_rows(), "unet_r34", 512) is None


def test_a_trained_encoder_pays_every_step_and_a_frozen_one_each_view_once(
        repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    runs = {r.method: r for r in expand(cfg)["topolora_components"].runs if r.seed == 0}
    t = cost.StepTime(train_s=20.0, encode_s=6.0, decoder_s=0.5, device="cpu")
    lora, frozen = runs["lora_only"], runs["decoder_only"]
    assert cost.encoder_trains(lora) and not cost.encoder_trains(frozen)
    images = sum(cost.split_counts(lora, d)[0] for d in lora.train_sets)
    assert images == 20  # DRIVE's training split (its split file)
    epochs = lora.train["epochs"]
    assert cost.run_seconds(lora, t) == pytest.approx(images * epochs * 20.0)
    # flips and rot90: 8 views, each encoded once; then a decoder step per image and epoch
    assert cost.run_seconds(frozen, t) == pytest.approx(
        images * (min(epochs, 8) * 6.0 + epochs * 0.5))


def test_case_counts_without_a_split_file_use_the_release_size(repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    spec = expand(cfg)["topolora_benchmark"].runs[0]
    assert cost.split_counts(spec, "g1020") == (765, 255)
    assert cost.split_counts(spec, "refuge2") == (800, 400)  # train + val, test
    with pytest.raises(KeyError, match="prepare it first"):
        cost.split_counts(spec, "nowhere")


@pytest.mark.slow  # builds every method once for its trainable count: ~40 s
def test_cost_of_every_study_counts_shared_runs_once(repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    studies = expand(cfg)
    chosen = [str(s) for s in cfg.studies.enabled]
    backbones = {(r.backbone, int(r.backbone_cfg.get("img_size") or 1024))
                 for s in studies.values() for r in s.runs}
    rows = [{"backbone": b, "img_size": str(sz), "device": "cpu", "device_name": "x",
             "train_s": "1", "encode_s": "0.1", "decoder_s": "0.01"} for b, sz in backbones]
    table = cost.cost_table(studies, chosen, rows)
    assert list(table["study"]) == [*chosen, "all (each run once)"]
    total = table.iloc[-1]
    unique = {r.name for n in chosen for r in studies[n].runs}
    assert total["train jobs"] == len(unique)
    assert total["train h"] <= table.iloc[:-1]["train h"].sum()  # shared runs once
    assert all(math.isfinite(v) and v > 0 for v in table["total h"])
    assert total["disk GB (at most)"] > 0 and table.attrs["devices"] == ["cpu: x"]
    with pytest.raises(KeyError, match="bench_cost.py --only"):
        cost.cost_table(studies, chosen, rows[1:])


def test_the_committed_table_covers_every_backbone_of_params_yaml(repo_root: Path) -> None:
    rows = cost.read_step_times()
    cfg = load_config([repo_root / "params.yaml"])
    used = {r.backbone for s in expand(cfg).values() for r in s.runs}
    assert used <= {r["backbone"] for r in rows}
    assert all(float(r["train_s"]) > 0 for r in rows)
