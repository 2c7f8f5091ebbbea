"""Tables neither paper has: paired comparisons, topology beside clDice, the head-to-head and
one run at every mode and fidelity level, checked cell by cell against the frames they read."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from samlora.reporting.comparisons import (comparisons_table, fidelity_table,
                                           head_to_head_figure, head_to_head_table,
                                           protocols_of, topology_table)


def _row(method, train, test, mode="native_fov", **metrics):
    out = {"method": method, "train_set": train, "test_set": test, "mode": mode,
           "prompt": "none"}
    for k, (mean, std) in metrics.items():
        out[f"{k}_mean"], out[f"{k}_std"] = mean, std
    return out


SUMMARY = pd.DataFrame([
    _row("topolora_sam", "drive", "drive", dice=(0.80, 0.01), cldice=(0.78, 0.02),
         betti0_error=(12.0, 1.5), betti1_error=(3.0, 0.5)),
    _row("topolora_sam", "drive", "stare", dice=(0.60, 0.03), cldice=(0.55, 0.02),
         betti0_error=(30.0, 2.0), betti1_error=(8.0, 1.0)),
    _row("unet_r34", "drive", "drive", dice=(0.82, 0.01), cldice=(0.80, 0.01),
         betti0_error=(20.0, 2.0), betti1_error=(4.0, 1.0)),
    _row("sam2lora", "refuge2", "refuge2", dice=(0.90, 0.02), cldice=(math.nan, math.nan),
         betti0_error=(1.0, 0.0), betti1_error=(0.0, 0.0)),
    _row("unet_r34", "refuge2", "refuge2", dice=(0.85, 0.02), cldice=(math.nan, math.nan),
         betti0_error=(2.0, 0.5), betti1_error=(0.0, 0.0)),
    _row("human", "-", "drive", dice=(0.79, math.nan), cldice=(0.77, math.nan),
         betti0_error=(15.0, math.nan), betti1_error=(2.0, math.nan)),
    _row("topolora_sam", "drive", "drive", "topolora_ref", dice=(0.83, 0.01)),
    _row("topolora_sam-ref", "drive", "drive", dice=(0.76, 0.02), cldice=(0.74, 0.02),
         betti0_error=(14.0, 1.0), betti1_error=(3.5, 0.5)),
    _row("topolora_sam-ref", "drive", "drive", "topolora_ref", dice=(0.79, 0.02)),
])


def test_topology_table_puts_betti_errors_beside_cldice() -> None:
    table = topology_table(SUMMARY)
    assert list(table.columns) == ["Dice", "clDice", "Betti-0 error", "Betti-1 error"]
    assert table.loc[("topolora_sam", "drive", "drive"), "Betti-0 error"] == "12.000 ± 1.500"
    assert table.loc[("human", "-", "drive"), "clDice"] == "0.770"  # one observer: no std
    assert table.loc[("sam2lora", "refuge2", "refuge2"), "clDice"] == "–"
    assert len(table) == 7  # native_fov rows only
    assert table.attrs["missing"] == []
    lean = SUMMARY.drop(columns=["betti1_error_mean", "betti1_error_std"])
    assert topology_table(lean).attrs["missing"] == ["betti1_error"]


def test_head_to_head_ranks_each_column_and_averages_them() -> None:
    assert protocols_of(SUMMARY) == [("drive", ["drive", "stare"]), ("refuge2", ["refuge2"])]
    table = head_to_head_table(SUMMARY, methods=["topolora_sam", "unet_r34", "sam2lora"])
    assert list(table.columns) == ["drive → drive", "drive → stare", "refuge2 → refuge2",
                                   "Mean rank"]
    assert table.loc["unet_r34", "drive → drive"] == "0.820 ± 0.010 (1)"
    assert table.loc["topolora_sam", "drive → drive"] == "0.800 ± 0.010 (2)"
    assert table.loc["sam2lora", "refuge2 → refuge2"] == "0.900 ± 0.020 (1)"
    assert table.loc["sam2lora", "drive → drive"] == "–"
    assert table.loc["topolora_sam", "Mean rank"] == "1.50"  # ranks 2 and 1 (only one on stare)
    assert table.loc["unet_r34", "Mean rank"] == "1.50"  # 1 and 2
    assert ("sam2lora", "drive", "stare") in table.attrs["missing"]
    assert table.loc["human"].tolist() == ["0.790", "–", "–", "–"]  # shown, not ranked
    # lower is better for an error
    errors = head_to_head_table(SUMMARY, methods=["topolora_sam", "unet_r34"],
                                metric="betti0_error")
    assert errors.loc["topolora_sam", "drive → drive"].endswith("(1)")


def test_head_to_head_figure_draws_one_bar_per_run() -> None:
    fig = head_to_head_figure(SUMMARY, methods=["topolora_sam", "unet_r34", "sam2lora"])
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == 5  # topolora 2 + unet 2 + sam2lora 1; missing runs have no bar
    heights = sorted(round(b.get_height(), 3) for b in bars)
    assert heights == [0.6, 0.8, 0.82, 0.85, 0.9]
    with pytest.raises(ValueError, match="no method"):
        head_to_head_figure(SUMMARY, methods=["nothing"])


def test_fidelity_table_is_one_run_in_every_mode_and_level() -> None:
    table = fidelity_table(SUMMARY)
    assert table.attrs["run"].startswith("topolora_sam (and topolora_sam-ref), drive → drive")
    assert list(table.columns) == [("corrected", "native_fov"), ("corrected", "topolora_ref"),
                                   ("reference", "native_fov"), ("reference", "topolora_ref")]
    assert table.loc["Dice"].tolist() == ["0.800 ± 0.010", "0.830 ± 0.010", "0.760 ± 0.020",
                                          "0.790 ± 0.020"]
    assert table.loc["clDice", ("corrected", "topolora_ref")] == "–"  # the mode lacks it
    with pytest.raises(ValueError, match="-ref"):
        fidelity_table(SUMMARY[~SUMMARY["method"].str.endswith("-ref")])


def test_comparisons_table_shows_the_interval_and_holm_p() -> None:
    from samlora.evaluation.stats import paired_comparisons

    rng = np.random.default_rng(0)
    cases = [f"c{i:02d}" for i in range(12)]
    base = rng.uniform(0.6, 0.8, len(cases))
    per_image = pd.concat([
        pd.DataFrame({"method": m, "train_set": "drive", "test_set": "drive", "seed": 0,
                      "case": cases, "mode": "native_fov", "dice": base + shift,
                      "cldice": base + shift / 2})
        for m, shift in (("ref", 0.0), ("better", 0.05), ("same", 0.0))])
    per_image.loc[per_image["method"] == "same", "dice"] += rng.normal(0, 0.01, len(cases))
    comparisons = paired_comparisons(per_image, "ref", ["dice", "cldice"])
    table = comparisons_table(comparisons)
    assert table.attrs["reference"] == "ref"
    assert table.index.names == ["Test set", "Method", "Train set", "Metric"]
    row = table.loc[("drive", "better", "drive", "Dice")]
    src = comparisons.set_index(["method", "metric"]).loc[("better", "dice")]
    assert row["n"] == "12"
    assert row["Δ mean [95 % CI]"] == (f"{src['mean_diff']:+.3f} [{src['ci_low']:+.3f}, "
                                       f"{src['ci_high']:+.3f}]")
    assert row["Δ mean [95 % CI]"].startswith("+0.050 [+0.050, +0.050]")  # a constant shift
    assert row["p (Holm)"] == f"{src['p_holm']:.2e}" and row["Significant"] == "yes"
    same = table.loc[("drive", "same", "drive", "clDice")]
    assert same["Significant"] == "no" and same["p"] == "–"  # all ties: no test
    assert same["Δ mean [95 % CI]"] == "+0.000 [+0.000, +0.000]"
    only_dice = comparisons_table(comparisons, metrics=["dice"])
    assert set(only_dice.index.get_level_values("Metric")) == {"Dice"}
