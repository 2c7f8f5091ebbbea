"""Evaluation modes: geometry, references, pooling, and the mode column through aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samlora.evaluation import reference_metrics as ref
from samlora.evaluation.aggregate import aggregate, read_per_image, write_comparisons
from samlora.evaluation.evaluate import evaluate_predictions
from samlora.evaluation.human import human_per_image
from samlora.evaluation.modes import (
    MODES,
    CaseContext,
    decode_pool,
    get_modes,
    pooled_values,
    resize_mask,
    resize_prob,
    score,
)
from samlora.evaluation.stats import pooled_bootstrap_ci
from samlora.utils.io import write_prob_png
from tests.evaluation.conftest import TEST_CASES

ALL = list(MODES)


def test_get_modes_names_the_key() -> None:
    assert [m.name for m in get_modes(["sam2lora_ref", "native_fov"])] == ["sam2lora_ref",
                                                                          "native_fov"]
    with pytest.raises(ValueError, match=r"evaluate\.modes.*unknown: \['ours'\]"):
        get_modes(["ours"])
    with pytest.raises(ValueError, match="at most once"):
        get_modes(["native_fov", "native_fov"])


def test_sides_per_dataset() -> None:
    topo = MODES["topolora_ref"]
    assert topo.side("drive") == 384 and topo.side("kvasir_seg") == 512
    assert topo.side("sl_ssdd") == 512 and MODES["sam2lora_ref"].side("kvasir_seg") == 1024
    assert MODES["native_fov"].side("drive") is None


def test_resize_is_opencv_s_nearest_and_bilinear() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((584, 565)) < 0.3
    rows = np.floor(np.arange(384) * 584 / 384).astype(int)  # INTER_NEAREST: floor(dst·scale)
    cols = np.floor(np.arange(384) * 565 / 384).astype(int)
    assert np.array_equal(resize_mask(mask, 384), mask[np.ix_(rows, cols)])
    ramp = np.array([[0.0, 1.0], [0.0, 1.0]])  # half-pixel centres, clamped at the edges
    assert resize_prob(ramp, 4)[0].tolist() == pytest.approx([0.0, 0.25, 0.75, 1.0])


def _drive_case(mirror: Path, num: str) -> tuple[np.ndarray, ...]:
    from tests.evaluation.conftest import drive_gif

    root = mirror / "DRIVE" / "test"
    gt = drive_gif(root / "1st_manual" / f"{num}_manual1.gif")
    g2 = drive_gif(root / "2nd_manual" / f"{num}_manual2.gif")
    fov = drive_gif(root / "mask" / f"{num}_test_mask.gif")
    return gt, g2, fov


def test_each_mode_scores_as_its_definition(mirror: Path) -> None:
    gt, g2, fov = _drive_case(mirror, "01")
    prob = np.where(g2, 0.9, 0.1)
    ctx = CaseContext("drive", 0, 20, seed=3)
    topo = score(MODES["topolora_ref"], prob, gt, fov, g2, ctx, ["dice"], 0.5)
    p384, g384 = resize_prob(prob, 384), resize_mask(gt, 384)  # the reference, not the union
    counts = ref.counts(p384 > 0.5, g384)
    assert decode_pool([topo["pool"]])[0, :4].tolist() == list(counts)
    assert topo["dice"] == pytest.approx(ref.seglab_overlap(*counts[:3])["dice"])
    assert topo["bfscore"] == pytest.approx(ref.seglab_bfscore(p384 > 0.5, g384))
    again = score(MODES["topolora_ref"], prob, gt, fov, g2, ctx, ["dice"], 0.5)
    assert again["pool"] == topo["pool"]  # ECE sampling is seeded by (seed, case index)
    sam = score(MODES["sam2lora_ref"], prob, gt, fov, g2, ctx, ["dice"], 0.5)
    union = resize_mask(gt | g2, 1024)
    assert sam == pytest.approx(ref.sam2lora_metrics(resize_prob(prob, 1024), union),
                                nan_ok=True)
    assert sam["dice"] != pytest.approx(  # the union is the reference, not the first observer
        ref.sam2lora_metrics(resize_prob(prob, 1024), resize_mask(gt, 1024))["dice"])
    ours = score(MODES["native_fov"], prob, gt, fov, g2, ctx, ["dice", "hd95_mm"], 0.5)
    pred = (prob >= 0.5)[fov]
    assert ours["dice"] == pytest.approx(2 * (pred & gt[fov]).sum() / (pred.sum() + gt[fov].sum()))
    assert np.isnan(ours["hd95_mm"])
    with_mm = score(MODES["native_fov"], prob, gt, fov, None,
                    CaseContext("drive", 0, 1, pixel_mm=0.02), ["hd95", "hd95_mm"], 0.5)
    assert with_mm["hd95_mm"] == pytest.approx(with_mm["hd95"] * 0.02)


def _write_probs(processed: Path, out: Path, blur: float) -> None:
    """Probability maps from the second observer, softened: a plausible model output."""
    from scipy.ndimage import gaussian_filter

    index = pd.read_csv(processed / "index.csv", dtype=str, keep_default_na=False)
    for row in index[index["split"] == "test"].to_dict("records"):
        with Image.open(processed / row["mask2"]) as im:
            second = np.asarray(im.convert("L")) >= 128
        prob = np.clip(gaussian_filter(second.astype(float), blur), 0.0, 1.0)
        out.mkdir(parents=True, exist_ok=True)
        write_prob_png(out / f"{row['case']}.png", prob)


@pytest.fixture(scope="module")
def two_seeds(drive_processed: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("modes")
    csvs = []
    for seed, blur in ((0, 1.0), (1, 2.0)):
        out = root / f"seed{seed}"
        _write_probs(drive_processed, out / "probs", blur)
        evaluate_predictions(drive_processed, out / "probs", out, 0.5, ["dice", "auc"],
                             {"method": "m", "train_set": "drive", "test_set": "drive",
                              "seed": str(seed)}, modes=ALL)
        csvs.append(out / "metrics_per_image.csv")
    human = root / "human" / "metrics_per_image.csv"
    human.parent.mkdir()
    human_per_image(drive_processed, ["dice", "auc"], modes=ALL).to_csv(human, index=False)
    return [*csvs, human]


def test_per_image_table_and_pooled_summary(two_seeds: list[Path]) -> None:
    table = pd.read_csv(two_seeds[0], dtype={"seed": str})
    assert list(table.columns[:6]) == ["method", "train_set", "test_set", "seed", "mode", "case"]
    assert table.groupby("mode")["case"].count().to_dict() == dict.fromkeys(ALL, len(TEST_CASES))
    native = table[table["mode"] == "native_fov"]
    assert native[["dice", "auc"]].notna().all().all() and native["f1"].isna().all()
    topo = table[table["mode"] == "topolora_ref"]
    summary = json.loads((two_seeds[0].parent / "metrics.json").read_text())
    pooled = pooled_values(decode_pool(topo["pool"]).sum(axis=0))
    assert summary["modes"]["topolora_ref"]["dice"]["mean"] == pytest.approx(pooled["dice"])
    assert summary["modes"]["topolora_ref"]["dice"]["pooled"] is True
    assert pooled["dice"] != pytest.approx(topo["dice"].mean(), abs=1e-6)  # micro is not macro
    assert summary["dice"] == summary["modes"]["native_fov"]["dice"]  # top level is ours
    assert summary["modes"]["sam2lora_ref"]["f1"]["mean"] == pytest.approx(
        table.loc[table["mode"] == "sam2lora_ref", "f1"].mean())


def test_aggregate_pools_per_seed_then_averages(two_seeds: list[Path], tmp_path: Path) -> None:
    summary = aggregate(two_seeds, tmp_path / "s.csv", tmp_path / "m.json", n_resamples=200)
    per_image = read_per_image(two_seeds)
    rows = summary.set_index(["method", "mode"])
    topo = per_image[(per_image["method"] == "m") & (per_image["mode"] == "topolora_ref")]
    per_seed = [pooled_values(decode_pool(g["pool"]).sum(axis=0))["dice"]
                for _, g in topo.groupby("seed")]
    row = rows.loc[("m", "topolora_ref")]
    assert row["dice_mean"] == pytest.approx(np.mean(per_seed))
    assert row["dice_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert row["dice_ci_low"] <= row["dice_mean"] <= row["dice_ci_high"]
    low, high = pooled_bootstrap_ci(topo, "dice", n_resamples=200)
    assert (row["dice_ci_low"], row["dice_ci_high"]) == pytest.approx((low, high))
    native = per_image[(per_image["method"] == "m") & (per_image["mode"] == "native_fov")]
    assert rows.loc[("m", "native_fov"), "dice_mean"] == pytest.approx(
        native.groupby("seed")["dice"].mean().mean())
    # the human row exists in our mode and TopoLoRA-SAM's, not where it is the reference
    assert sorted(summary.loc[summary["method"] == "human", "mode"]) == ["native_fov",
                                                                         "topolora_ref"]
    nested = json.loads((tmp_path / "m.json").read_text())
    leaf = nested["m"]["drive"]["drive"]
    assert leaf["dice"] == pytest.approx(rows.loc[("m", "native_fov"), "dice_mean"])
    assert leaf["mode_topolora_ref"]["dice"] == pytest.approx(row["dice_mean"])
    assert "f1" in leaf["mode_sam2lora_ref"] and "f1" not in leaf["mode_topolora_ref"]


def test_a_study_keeps_its_modes(two_seeds: list[Path], tmp_path: Path) -> None:
    summary = aggregate(two_seeds, tmp_path / "s.csv", tmp_path / "m.json", n_resamples=0,
                        modes=["native_fov", "topolora_ref"])
    assert sorted(set(summary["mode"])) == ["native_fov", "topolora_ref"]
    with pytest.raises(ValueError, match=r"\['nope_ref'\].*evaluate\.modes"):
        aggregate(two_seeds[:1], tmp_path / "x.csv", tmp_path / "x.json", modes=["nope_ref"])


def test_comparisons_pair_within_a_mode(two_seeds: list[Path], tmp_path: Path) -> None:
    table = write_comparisons(two_seeds, "human", tmp_path / "c.csv")
    assert sorted(set(table["mode"])) == ["native_fov", "topolora_ref"]  # no human in sam2lora_ref
    assert set(table.loc[table["mode"] == "native_fov", "metric"]) == {"dice", "auc"}
    assert (table["n"] == len(TEST_CASES)).all()
