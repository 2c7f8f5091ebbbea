"""TopoLoRA-SAM tables and figures from small synthetic summary tables with known numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from samlora.evaluation.calibration import ece, reliability_curve
from samlora.reporting.topolora import (benchmark_table, best_per_row, cldice_weight_table,
                                        component_ablation_table, dataset_average,
                                        heatmap_figure, metrics_table, pool_reliability,
                                        rank_ablation_table, reliability_figure,
                                        tradeoff_figure, transfer_table)

NAN = math.nan


def _row(method: str, train: str, test: str, mode: str = "native_fov", prompt: str = "none",
         **metrics: tuple[float, float]) -> dict:
    row = {"method": method, "train_set": train, "test_set": test, "mode": mode,
           "prompt": prompt, "n_seeds": 3, "n_images": 10}
    for name, (mean, std) in metrics.items():
        row[f"{name}_mean"], row[f"{name}_std"] = mean, std
    return row


@pytest.fixture
def summary() -> pd.DataFrame:
    """topolora_sam everywhere, unet_r34 without STARE, the human on the retina sets, plus
    rows every in-domain table must ignore (cross-dataset, another mode, a prompt)."""
    topo = {"drive": (0.80, 0.01), "stare": (0.70, 0.02), "chase_db1": (0.60, 0.03),
            "kvasir_seg": (0.90, 0.04), "sl_ssdd": (0.50, 0.05)}
    unet = {"drive": (0.78, 0.02), "chase_db1": (0.65, 0.01), "kvasir_seg": (0.92, 0.01),
            "sl_ssdd": (0.40, 0.02)}
    rows = [_row("unet_r34", d, d, dice=v, cldice=(v[0] - 0.1, 0.0), ece=(0.05, 0.01),
                 iou=(0.5, 0.1), sensitivity=(0.6, 0.1)) for d, v in unet.items()]
    rows += [_row("topolora_sam", d, d, dice=v, cldice=(v[0] + 0.05, 0.01), ece=(0.08, 0.01),
                  iou=(0.55, 0.02), sensitivity=(0.7, 0.02)) for d, v in topo.items()]
    rows += [_row("human", "-", d, dice=(m, NAN), cldice=(m, NAN), ece=(NAN, NAN))
             for d, m in (("drive", 0.79), ("stare", 0.76), ("chase_db1", 0.77))]
    rows += [_row("topolora_sam", "drive", "stare", dice=(0.10, 0.0)),
             _row("topolora_sam", "drive", "drive", mode="topolora_ref", dice=(0.20, 0.0)),
             _row("topolora_sam", "drive", "drive", prompt="box", dice=(0.30, 0.0))]
    return pd.DataFrame(rows)


def test_benchmark_table_cells_averages_and_missing(summary: pd.DataFrame) -> None:
    table = benchmark_table(summary)
    assert list(table.index) == ["U-Net (R34)", "TopoLoRA-SAM", "Human (second observer)"]
    assert list(table.columns) == ["DRIVE", "STARE", "CHASE_DB1", "Kvasir-SEG", "SL-SSDD",
                                   "Retina avg.", "Overall avg."]
    topo = table.loc["TopoLoRA-SAM"]
    assert topo["DRIVE"] == "0.800 ± 0.010"  # not the other mode's, prompt's or transfer's
    assert topo["Retina avg."] == "0.700 ± 0.020"  # mean of means ± mean of stds
    assert topo["Overall avg."] == "0.700 ± 0.030"
    unet = table.loc["U-Net (R34)"]
    assert unet["STARE"] == "–" and unet["Retina avg."] == "–" and unet["Overall avg."] == "–"
    human = table.loc["Human (second observer)"]
    assert human["DRIVE"] == "0.790" and human["Retina avg."] == "0.773"  # one "seed": no std
    assert human["Kvasir-SEG"] == "–" and human["Overall avg."] == "–"
    assert table.attrs["missing"] == [("unet_r34", "stare"), ("human", "kvasir_seg"),
                                      ("human", "sl_ssdd")]
    bare = benchmark_table(summary, methods=["topolora_sam"], avg_std="none")
    assert bare.loc["TopoLoRA-SAM", "Retina avg."] == "0.700"
    assert benchmark_table(summary, mode="topolora_ref",
                           methods=["topolora_sam"]).iloc[0, 0] == "0.200 ± 0.000"
    mean, std = dataset_average(summary, "topolora_sam")
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.02)
    assert math.isnan(dataset_average(summary, "unet_r34")[0])


def test_metrics_table_recall_and_cldice_retina_only(summary: pd.DataFrame) -> None:
    table = metrics_table(summary)
    assert list(table.columns) == ["IoU", "Precision", "Recall", "BFScore", "clDice", "ECE"]
    assert table.index.names == ["Dataset", "Method"]
    assert table.loc[("DRIVE", "TopoLoRA-SAM"), "Recall"] == "0.700 ± 0.020"
    assert table.loc[("DRIVE", "TopoLoRA-SAM"), "clDice"] == "0.850 ± 0.010"
    assert table.loc[("Kvasir-SEG", "TopoLoRA-SAM"), "clDice"] == "–"  # has a value: not shown
    assert table.loc[("DRIVE", "TopoLoRA-SAM"), "Precision"] == "–"  # not in the summary
    assert table.loc[("STARE", "U-Net (R34)"), "IoU"] == "–"
    assert table.loc[("CHASE_DB1", "Human (second observer)"), "clDice"] == "0.770"


def test_best_per_row_max_and_min_for_ece() -> None:
    values = pd.DataFrame({"a": [0.8, 0.1, NAN], "b": [0.9, 0.05, NAN], "human": [1.0, 0.0, 1]},
                          index=["x", "y", "z"])
    assert list(best_per_row(values, "dice", exclude=["human"])) == ["b", "a", None]
    assert list(best_per_row(values, "ece", exclude=["human"])) == ["a", "b", None]
    assert list(best_per_row(values, "dice")) == ["human", "a", "human"]


def _bold(fig: Figure) -> list[tuple[float, float, str]]:
    return sorted((t.get_position()[1], t.get_position()[0], t.get_text())
                  for t in fig.axes[0].texts if t.get_fontweight() == "bold")


def test_heatmap_marks_the_best_model_per_dataset(summary: pd.DataFrame) -> None:
    fig = heatmap_figure(summary, "dice", datasets=["drive", "chase_db1"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["U-Net (R34)", "TopoLoRA-SAM",
                                                            "Human (second observer)"]
    assert len(ax.texts) == 6 and ax.images[0].get_cmap().name == "cividis"
    # DRIVE: TopoLoRA 0.80 (human 0.79 never best); CHASE: U-Net 0.65
    assert _bold(fig) == [(0, 1, "0.800 ± 0.010"), (1, 0, "0.650 ± 0.010")]
    assert len(ax.patches) == 2
    fig = heatmap_figure(summary, "ece", datasets=["drive"])  # lowest ECE: U-Net 0.05
    assert _bold(fig) == [(0, 0, "0.050 ± 0.010")]
    assert "lower is better" in fig.axes[1].get_ylabel()


def test_tradeoff_figure_log_axis_and_points(summary: pd.DataFrame) -> None:
    params = pd.DataFrame({"method": ["unet_r34", "topolora_sam", "other"],
                           "trainable": [24_000_000, 4_930_000, 10]})
    summary = pd.concat([summary, pd.DataFrame([_row("unet_r34", "stare", "stare",
                                                     dice=(0.70, 0.03))])], ignore_index=True)
    fig = tradeoff_figure(summary, params)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert sorted(t.get_text() for t in ax.texts) == ["TopoLoRA-SAM", "U-Net (R34)"]  # no human
    xy = sorted((float(c.lines[0].get_xdata()[0]), float(c.lines[0].get_ydata()[0]))
                for c in ax.containers)
    assert xy == [(4_930_000, pytest.approx(0.7)), (24_000_000, pytest.approx(0.71))]
    with pytest.raises(ValueError, match="trainable"):
        tradeoff_figure(summary, params.iloc[2:])


def test_reliability_pooling_matches_ece_of_all_pixels() -> None:
    rng = np.random.default_rng(0)
    probs = [rng.random((8, 8)), rng.random((6, 5))]
    gts = [rng.random(p.shape) < p for p in probs]
    curves = [reliability_curve(p, g) for p, g in zip(probs, gts)]
    pooled = pool_reliability(curves)
    flat_p = np.concatenate([p.ravel() for p in probs])[None]
    flat_g = np.concatenate([g.ravel() for g in gts])[None]
    assert float(pooled["ece"]) == pytest.approx(ece(flat_p, flat_g))
    assert pooled["count"].sum() == 94
    fig = reliability_figure({"TopoLoRA-SAM": curves}, title="DRIVE")
    assert len(fig.axes) == 2 and fig.axes[1].get_yscale() == "log"
    assert "ECE" in fig.axes[0].get_legend().get_texts()[1].get_text()


def test_rank_table_parses_r_from_names() -> None:
    dice = {"topolora_sam-r4-alpha8": 0.70, "topolora_sam": 0.75, "topolora_sam_r16": 0.76,
            "topolora_sam-r32-alpha64": 0.74, "topolora_sam-cldice0.25": 0.1, "lora_only": 0.2}
    summary = pd.DataFrame([_row(m, "drive", "drive", dice=(v, 0.01), cldice=(v, 0.02))
                            for m, v in dice.items()])
    params = pd.DataFrame({"method": ["topolora_sam-r4-alpha8", "topolora_sam"],
                           "trainable": [4_490_000, 4_930_000]})
    table = rank_ablation_table(summary, params)
    assert list(table.index) == ["4", "8", "16", "32"]
    assert list(table.columns) == ["Method", "Dice", "clDice", "Trainable"]
    assert table.loc["4", "Method"] == "topolora_sam-r4-alpha8"
    assert table.loc["16", "Method"] == "topolora_sam_r16"
    assert table.loc["32", "Dice"] == "0.740 ± 0.010"
    assert list(table["Trainable"]) == ["4.49M", "4.93M", "–", "–"]
    assert rank_ablation_table(summary, dataset="stare").empty


def test_cldice_weight_table(summary: pd.DataFrame) -> None:
    lams = {"topolora_sam_no_cldice": 0.60, "topolora_sam-cldice0.25": 0.62,
            "topolora_sam": 0.64, "topolora_sam-cldice1": 0.63, "topolora_sam-cldice2": 0.61}
    rows = [_row(m, d, d, dice=(v, 0.01), cldice=(v + 0.1, 0.01))
            for m, v in lams.items() for d in ("drive", "chase_db1")
            if (m, d) != ("topolora_sam-cldice2", "chase_db1")]
    table = cldice_weight_table(pd.DataFrame(rows))
    assert list(table.index) == ["0", "0.25", "0.5", "1", "2"]
    assert list(table.columns) == ["Dice (DRIVE)", "clDice (DRIVE)", "Dice (CHASE_DB1)",
                                   "clDice (CHASE_DB1)"]
    assert table.loc["0.25", "Dice (DRIVE)"] == "0.620 ± 0.010"
    assert table.loc["0.5", "clDice (CHASE_DB1)"] == "0.740 ± 0.010"
    assert table.loc["2", "Dice (CHASE_DB1)"] == "–"


def test_component_and_transfer_tables(summary: pd.DataFrame) -> None:
    rows = [_row(m, "drive", "drive", dice=(0.70 + i / 100, 0.01), cldice=(0.8, 0.0))
            for i, m in enumerate(["decoder_only", "lora_only", "adapter_only", "topolora_sam"])]
    table = component_ablation_table(pd.DataFrame(rows))
    assert list(table.columns) == ["LoRA", "Adapter", "clDice loss", "Dice", "clDice"]
    assert list(table.loc["TopoLoRA-SAM", ["LoRA", "Adapter", "clDice loss"]]) == ["✓"] * 3
    assert list(table.loc["LoRA only", ["LoRA", "Adapter"]]) == ["✓", "✗"]
    assert table.loc["Adapter only", "Dice"] == "0.720 ± 0.010"
    assert table.loc["clDice only", "Dice"] == "–"  # no run: still a row
    rows = [_row("topolora_sam", "drive", t, dice=(d, 0.01))
            for t, d in (("drive", 0.8), ("stare", 0.7), ("chase_db1", 0.6))]
    rows += [_row("topolora_sam_no_cldice", "drive", t, dice=(d, 0.02))
             for t, d in (("drive", 0.79), ("stare", 0.65))]
    rows += [_row("topolora_sam_no_cldice", "chase_db1", "chase_db1", dice=(0.9, 0.0))]
    table = transfer_table(pd.DataFrame(rows), metrics=["dice"])
    assert table.index.names == ["Method", "Test set"]
    assert table.loc[("TopoLoRA-SAM", "DRIVE (in-domain)"), "Dice"] == "0.800 ± 0.010"
    assert table.loc[("TopoLoRA-SAM", "STARE"), "Dice"] == "0.700 ± 0.010"
    assert table.loc[("TopoLoRA-SAM w/o clDice", "CHASE_DB1"), "Dice"] == "–"  # not 0.9
