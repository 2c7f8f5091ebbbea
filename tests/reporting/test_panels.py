"""Qualitative panels and reliability data on real DRIVE images: the case of largest clDice
gain, the best baseline, the error map's pixel counts and the pooled ECE, known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage.morphology import skeletonize

from samlora.evaluation.calibration import ece
from samlora.evaluation.evaluate import evaluate_predictions, read_mask_png
from samlora.reporting import panels
from samlora.reporting.topolora import pool_reliability
from samlora.utils.io import write_json, write_prob_png


def _erase(gt: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """``gt`` with about ``share`` of its vessel skeleton's neighbourhood removed (breaks
    vessels: what lowers clDice)."""
    out = gt.copy()
    skel = np.argwhere(skeletonize(gt))
    for y, x in skel[rng.random(len(skel)) < share]:
        out[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = False
    return out


@pytest.fixture(scope="module")
def study(drive_processed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ours (the reference, 2 % of its vessels broken) and two baselines on the 3 DRIVE test cases;
    unet_r34 erases the most vessels on the second case."""
    root = tmp_path_factory.mktemp("panels")
    index = pd.read_csv(drive_processed / "index.csv", dtype=str, keep_default_na=False)
    cases = list(index.query("split == 'test'")["case"])
    erase = {"topolora_sam": [0.02, 0.02, 0.02], "unet_r34": [0.05, 0.6, 0.1],
             "segformer_b0": [0.3, 0.3, 0.3]}
    csvs = []
    for method, shares in erase.items():
        folder = root / "runs" / f"{method}__drive__seed0" / "drive"
        rng = np.random.default_rng(1)
        for case, share in zip(cases, shares):
            gt = read_mask_png(drive_processed / index.set_index("case").loc[case, "mask"])
            mask = _erase(gt, share, rng)
            prob = np.where(mask, 0.9 if method != "topolora_sam" else 0.8, 0.1)
            write_prob_png(folder / "probs" / f"{case}.png", prob)
        write_json(folder / "predictions.json",
                   {"run": f"runs/{method}__drive__seed0", "test_set": "drive",
                    "method": method, "train_set": "drive", "seed": 0, "cases": cases})
        meta = {"method": method, "train_set": "drive", "test_set": "drive", "seed": "0"}
        evaluate_predictions(drive_processed, folder / "probs", folder, 0.5,
                             ["dice", "cldice"], meta)
        csvs.append(folder / "metrics_per_image.csv")
    per_image = pd.concat(pd.read_csv(c, dtype={"case": str, "seed": str}) for c in csvs)
    summary = (per_image.groupby(["method", "train_set", "test_set"], as_index=False)
               [["dice", "cldice"]].mean()
               .rename(columns={"dice": "dice_mean", "cldice": "cldice_mean"}))
    return {"csvs": csvs, "per_image": per_image, "summary": summary, "cases": cases,
            "processed": drive_processed.parent}


def test_the_case_shown_is_the_largest_cldice_gain(study: dict) -> None:
    seed, case, gain = panels.pick_gain_case(study["per_image"], "topolora_sam", "unet_r34",
                                             "drive")
    rows = study["per_image"].set_index(["method", "case"])["cldice"]
    gains = {c: rows[("topolora_sam", c)] - rows[("unet_r34", c)] for c in study["cases"]}
    assert (seed, case) == ("0", study["cases"][1])  # the case with 60 % of vessels erased
    assert gain == pytest.approx(max(gains.values()))
    with pytest.raises(ValueError, match="no per-image rows of mask2former_swin_t"):
        panels.pick_gain_case(study["per_image"], "topolora_sam", "mask2former_swin_t",
                              "drive")


def test_best_baseline_is_the_highest_in_domain_dice(study: dict) -> None:
    summary = study["summary"]
    dice = summary.set_index("method")["dice_mean"]
    expected = "unet_r34" if dice["unet_r34"] > dice["segformer_b0"] else "segformer_b0"
    assert panels.best_baseline(summary, "drive") == expected
    transfer = summary.assign(train_set="stare")  # no in-domain row: no baseline
    assert panels.best_baseline(transfer, "drive") is None


def test_error_map_counts_false_positives_and_negatives() -> None:
    rng = np.random.default_rng(0)
    gt, pred = rng.random((40, 50)) > 0.7, rng.random((40, 50)) > 0.6
    fov = np.ones_like(gt)
    fov[:5] = False
    rgb = panels.error_map(gt, pred, fov)
    is_colour = {k: np.all(np.isclose(rgb, v), axis=2) for k, v in panels.ERROR_COLOURS.items()}
    assert is_colour["fp"].sum() == (pred & ~gt & fov).sum()
    assert is_colour["fn"].sum() == (~pred & gt & fov).sum()
    assert np.allclose(rgb[:5], 0.25)  # outside the FOV: dimmed, no class colour


def test_figure_rows_from_the_prediction_folders(study: dict) -> None:
    rows, notes = panels.load_gain_rows(study["csvs"], study["processed"], study["summary"],
                                        datasets=("drive", "chase_db1"))
    assert [r.test_set for r in rows] == ["drive"] and notes[0].startswith("chase_db1:")
    row = rows[0]
    assert row.case == study["cases"][1] and row.baseline in ("unet_r34", "segformer_b0")
    assert row.value > row.baseline_value and row.image.shape[:2] == row.gt.shape
    fig = panels.qualitative_figure(rows)
    assert len(fig.axes) == 5
    assert "errors" in fig.axes[4].get_title()
    with pytest.raises(ValueError, match="no qualitative row"):
        panels.qualitative_figure([])
    # a study without baselines compares with its best other method, and says so
    no_base = [c for c in study["csvs"] if "topolora_sam" in str(c) or "unet" in str(c)]
    summary = study["summary"].replace({"unet_r34": "decoder_only"})
    import shutil

    other = no_base[1].parents[1].with_name("decoder_only__drive__seed0")
    shutil.copytree(no_base[1].parents[1], other, dirs_exist_ok=True)
    pred = other / "drive" / "predictions.json"
    pred.write_text(pred.read_text().replace("unet_r34", "decoder_only"))
    csv = other / "drive" / "metrics_per_image.csv"
    csv.write_text(csv.read_text().replace("unet_r34", "decoder_only"))
    rows, notes = panels.load_gain_rows([no_base[0], csv], study["processed"],
                                        summary[summary["method"] != "segformer_b0"],
                                        datasets=("drive",))
    assert rows[0].baseline == "decoder_only" and "best other method" in notes[0]
    assert panels.load_gain_rows([no_base[0], csv], study["processed"],
                                 summary[summary["method"] != "segformer_b0"],
                                 datasets=("drive",), fallback=False)[0] == []


def test_reliability_curves_pool_to_the_ece_of_all_pixels(study: dict) -> None:
    curves = panels.reliability_curves(study["csvs"], study["processed"])
    assert set(curves) == {"TopoLoRA-SAM", "U-Net (R34)", "SegFormer-B0"}
    assert all(len(v) == 3 for v in curves.values())
    from samlora.utils.io import read_prob_png

    folder = study["csvs"][0].parent
    index = pd.read_csv(study["processed"] / "drive/index.csv", dtype=str,
                        keep_default_na=False).query("split == 'test'")
    probs, gts, fovs = [], [], []
    for row in index.itertuples():
        probs.append(read_prob_png(folder / "probs" / f"{row.case}.png").ravel())
        gts.append(read_mask_png(study["processed"] / "drive" / row.mask).ravel())
        fovs.append(read_mask_png(study["processed"] / "drive" / row.fov).ravel())
    direct = ece(np.concatenate(probs)[None], np.concatenate(gts)[None],
                 np.concatenate(fovs)[None])  # one 1×N image of every pixel
    pooled = float(pool_reliability(curves["TopoLoRA-SAM"])["ece"])
    assert pooled == pytest.approx(direct, rel=1e-9)
    missing = study["csvs"][0].parent / "probs" / f"{index.iloc[0].case}.png"
    backup = missing.read_bytes()
    missing.unlink()
    try:
        with pytest.raises(FileNotFoundError, match="prediction missing"):
            panels.reliability_curves(study["csvs"], study["processed"])
    finally:
        missing.write_bytes(backup)
