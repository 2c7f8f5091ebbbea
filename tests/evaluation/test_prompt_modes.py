"""A prompted method end to end on real DRIVE cases: train, predict and evaluate every prompt
mode, aggregate beside a prompt-free method."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.evaluation.aggregate import aggregate, read_per_image
from samlora.evaluation.predict import predict_dataset
from samlora.evaluation.prompt_modes import evaluate_prompt_modes
from samlora.steps import run_evaluate
from samlora.training.loop import train_run
from samlora.utils.io import read_prob_png

MODES = ["none", "1pt", "box"]


@pytest.fixture(scope="module")
def prompted_run(repo_root: Path, drive_processed_val: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """topolora_sam on a 64 px tiny SAM, trained 1 epoch with 2 prompt points on DRIVE 21-23,
    one of which the loop carves out for (prompted) validation."""
    cfg = load_config([repo_root / "params.yaml"])
    cfg = OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(drive_processed_val.parent)},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "methods": {"topolora_sam": {
            "backbone": "sam_tiny", "adapter": {"hidden": 8},
            "loss": {"iou_l1": 0.1},
            "prompts": {"train_points": 2, "eval_modes": MODES, "eval_seed": 0}}},
        "train": {"epochs": 1, "batch_size": 1, "grad_accum": 1, "num_workers": 0,
                  "val_fraction": 0.2, "augment": None, "device": "cpu"},
    })
    run = tmp_path_factory.mktemp("runs") / "topolora_sam" / "drive" / "seed0"
    row = train_run(cfg, "topolora_sam", "drive", 0, run, models_dir=run)
    assert row["epoch"] == 1 and row["train_loss"] > 0
    # validation ran, through the prompted step (train_points > 0 gives a prompt sampler)
    assert 0.0 <= row["val_dice"] <= 1.0 and row["val_loss"] > 0
    return run, cfg


def prompted_maps_equal_to_free(out: Path, cases: list[str], modes: list[str]) -> list[str]:
    """``<mode>/<case>`` of every prompted probability map identical to the prompt-free one."""
    same = []
    for case in cases:
        free = read_prob_png(out / "probs" / f"{case}.png")
        for mode in modes:
            if mode == "none":
                continue
            prompted = read_prob_png(out / "probs" / mode / f"{case}.png")
            assert prompted.shape == free.shape
            if float(np.abs(prompted - free).max()) <= 1e-6:
                same.append(f"{mode}/{case}")
    return same


def test_every_mode_is_predicted_and_scored(prompted_run: tuple, drive_processed_val: Path,
                                            tmp_path: Path) -> None:
    run, cfg = prompted_run
    out = tmp_path / "drive"
    cases = predict_dataset(run, drive_processed_val, out, run, device="cpu")
    assert cases == ["drive_01", "drive_02", "drive_03"]
    for case in cases:
        assert (out / "probs" / f"{case}.png").is_file()  # prompt-free where every method has it
        assert (out / "probs" / "1pt" / f"{case}.png").is_file()
        assert (out / "probs" / "box" / f"{case}.png").is_file()
    assert json.loads((out / "predictions.json").read_text())["prompt_modes"] == MODES
    run_evaluate(cfg, argparse.Namespace(pred=out, test_set="drive"))
    table = pd.read_csv(out / "metrics_per_image.csv", dtype={"seed": str})
    assert list(table.columns[:7]) == ["method", "train_set", "test_set", "seed", "prompt",
                                       "mode", "case"]
    n_eval = len(cfg.evaluate.modes)
    assert sorted(table["prompt"].unique()) == sorted(MODES) and len(table) == 9 * n_eval
    assert sorted(table["mode"].unique()) == sorted(cfg.evaluate.modes)
    table = table[table["mode"] == "native_fov"]
    summary = json.loads((out / "metrics.json").read_text())
    assert set(summary["prompts"]) == set(MODES)
    none = table[table["prompt"] == "none"]
    assert summary["dice"]["mean"] == pytest.approx(none["dice"].mean())
    assert summary["prompts"]["box"]["dice"]["mean"] == pytest.approx(
        table.loc[table["prompt"] == "box", "dice"].mean())
    # prompts change the prediction: no prompted map is the prompt-free one
    assert prompted_maps_equal_to_free(out, cases, MODES) == []


def test_prompt_free_decoding_in_every_mode_is_caught(prompted_run: tuple,
                                                      drive_processed_val: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above fails when every mode decodes without prompts (a comparison of the
    metric columns with ``Series.equals`` did not: box and prompt-free rows differ in index)."""
    import samlora.training.prompted as prompted

    monkeypatch.setattr(prompted, "evaluation_prompts", lambda batch, mode, settings: None)
    run, cfg = prompted_run
    out = tmp_path / "drive"
    cases = predict_dataset(run, drive_processed_val, out, run, device="cpu")
    assert len(prompted_maps_equal_to_free(out, cases, MODES)) == len(cases) * (len(MODES) - 1)
    run_evaluate(cfg, argparse.Namespace(pred=out, test_set="drive"))
    table = pd.read_csv(out / "metrics_per_image.csv", dtype={"seed": str})
    box, none = (table.loc[table["prompt"] == m, "dice"] for m in ("box", "none"))
    assert np.allclose(box.to_numpy(), none.to_numpy())  # identical scores ...
    assert not box.equals(none)  # ... which Series.equals still calls different


def test_current_params_decide_the_modes(prompted_run: tuple, drive_processed_val: Path,
                                         tmp_path: Path) -> None:
    run, _ = prompted_run
    predict_dataset(run, drive_processed_val, tmp_path, run, device="cpu", prompts_cfg={})
    assert sorted(p.name for p in (tmp_path / "probs").iterdir()) == \
        ["drive_01.png", "drive_02.png", "drive_03.png"]
    assert json.loads((tmp_path / "predictions.json").read_text())["prompt_modes"] == ["none"]
    with pytest.raises(ValueError, match="include 'none'"):
        evaluate_prompt_modes(drive_processed_val, tmp_path, 0.5, ["dice"],
                              {"method": "m", "train_set": "t", "test_set": "drive",
                               "seed": "0"}, ["box"])


def test_aggregate_keeps_prompt_free_and_prompted_rows_apart(tmp_path: Path) -> None:
    ids = {"train_set": "drive", "test_set": "drive", "seed": "0"}
    free = pd.DataFrame([{"method": "topolora_sam", **ids, "case": c, "dice": d}
                         for c, d in (("a", 0.6), ("b", 0.8))])
    prompted = pd.DataFrame([{"method": "sam2lora", **ids, "prompt": p, "case": c, "dice": d}
                             for p, c, d in (("none", "a", 0.5), ("none", "b", 0.7),
                                             ("box", "a", 0.9), ("box", "b", 0.7))])
    free.to_csv(tmp_path / "free.csv", index=False)
    prompted.to_csv(tmp_path / "prompted.csv", index=False)
    paths = [tmp_path / "free.csv", tmp_path / "prompted.csv"]
    assert read_per_image(paths)["prompt"].tolist() == ["none"] * 4 + ["box"] * 2
    summary = aggregate(paths, tmp_path / "summary.csv", tmp_path / "metrics.json")
    assert list(summary.columns[:5]) == ["method", "train_set", "test_set", "mode", "prompt"]
    by = summary.set_index(["method", "prompt"])["dice_mean"]
    assert by[("topolora_sam", "none")] == pytest.approx(0.7)
    assert by[("sam2lora", "none")] == pytest.approx(0.6)
    assert by[("sam2lora", "box")] == pytest.approx(0.8)
    nested = json.loads((tmp_path / "metrics.json").read_text())
    assert nested["sam2lora"]["drive"]["drive"]["dice"] == pytest.approx(0.6)
    assert nested["sam2lora"]["drive"]["drive"]["prompt_box"]["dice"] == pytest.approx(0.8)
    assert "prompt_box" not in nested["topolora_sam"]["drive"]["drive"]
    plain = aggregate([paths[0]], tmp_path / "s2.csv", tmp_path / "m2.json")
    assert "prompt" not in plain.columns  # prompt-free studies: the summary is unchanged
