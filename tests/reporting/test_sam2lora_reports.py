"""SAM2LoRA tables and the rank figure from small synthetic summaries with known numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from samlora.evaluation.aggregate import ALL_MODES, add_mode_rows
from samlora.reporting import sam2lora as rep

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("dice", "auc", "sensitivity", "specificity", "accuracy", "hd95", "mcc")
PROMPT_OFFSET = {"none": 0.0, "1pt": 0.05, "box": 0.25}  # mean 0.1, std 0.1322875...
RANK_METHODS = ["sam2lora-r1024-alpha2048", "sam2lora_zero_shot", "sam2lora-r64-alpha128",
                "sam2lora-r256-alpha512", "sam2lora-r32-alpha64"]  # shuffled on purpose
#: The one absent summary row of the rank study, as attrs["missing"] names it.
GAP = "sam2lora-r256-alpha512 / vessel_union / stare / prompt box / sam2lora_ref: no summary row"
STEP = {"sam2lora_zero_shot": 0.0, "sam2lora-r32-alpha64": 0.1, "sam2lora-r64-alpha128": 0.12,
        "sam2lora-r256-alpha512": 0.14, "sam2lora-r1024-alpha2048": 0.16}


def _row(method: str, train: str, test: str, prompt: str, dice: float,
         mode: str = "sam2lora_ref", **extra: float) -> dict:
    row = {"method": method, "train_set": train, "test_set": test, "mode": mode,
           "prompt": prompt, "n_seeds": 3, "n_images": 10}
    values = {"dice": dice, "auc": dice + 0.3, "sensitivity": 0.7, "specificity": 0.98,
              "accuracy": 0.96, "hd95": 12.5, "mcc": 0.75, **extra}
    for m in METRICS:
        row[f"{m}_mean"], row[f"{m}_std"] = values[m], 0.01
    return row


@pytest.fixture
def vessel() -> pd.DataFrame:
    """Rank study: 5 methods × drive/stare × 3 prompt modes; r256/stare/box absent; the
    zero-shot has no MCC; native_fov rows for the zero-shot only (prompt none)."""
    rows = []
    for m in RANK_METHODS:
        for test, base in (("drive", 0.5), ("stare", 0.4)):
            for prompt, off in PROMPT_OFFSET.items():
                if (m, test, prompt) == ("sam2lora-r256-alpha512", "stare", "box"):
                    continue
                extra = {"mcc": math.nan} if m == "sam2lora_zero_shot" else {}
                rows.append(_row(m, "vessel_union", test, prompt, base + STEP[m] + off, **extra))
    rows.append(_row("sam2lora_zero_shot", "vessel_union", "drive", "none", 0.9, "native_fov"))
    return add_mode_rows(pd.DataFrame(rows))  # the all_modes rows as aggregate writes them


def test_all_modes_name_matches_aggregate() -> None:
    assert rep.ALL_MODES == ALL_MODES


def test_per_dataset_table_all_modes_cells(vessel: pd.DataFrame) -> None:
    table = rep.per_dataset_table(vessel, "sam2lora-r32-alpha64")
    assert table.attrs["prompt"] == "all_modes" and table.attrs["missing"] == []
    assert list(table.index) == ["drive", "stare"] and table.index.name == "Test set"
    assert list(table.columns) == ["Dice", "AUC", "Sensitivity", "Specificity", "Accuracy",
                                   "HD95 (px)", "MCC"]
    # drive: 0.6 + (0, 0.05, 0.25): mean 0.700, std over the 3 modes 0.132
    assert table.loc["drive", "Dice"] == "0.700 ± 0.132"
    assert table.loc["stare", "AUC"] == "0.900 ± 0.132"
    assert table.loc["drive", "HD95 (px)"] == "12.500 ± 0.000"  # same in every mode
    assert table.map(lambda c: isinstance(c, str)).all().all()


def test_per_dataset_table_prompt_mode_and_missing(vessel: pd.DataFrame) -> None:
    box = rep.per_dataset_table(vessel, "sam2lora-r256-alpha512", prompt="box", decimals=2)
    assert box.loc["drive", "Dice"] == "0.89 ± 0.01"  # 0.5 + 0.14 + 0.25, seeds' std
    assert (box.loc["stare"] == "–").all()  # no box row on stare
    assert box.attrs["missing"] == [GAP]
    zs = rep.per_dataset_table(vessel, "sam2lora_zero_shot")
    assert zs.loc["drive", "MCC"] == "–" and zs.loc["drive", "Dice"] == "0.600 ± 0.132"
    assert len(zs.attrs["missing"]) == 2 and "no mcc" in zs.attrs["missing"][0]
    ours = rep.per_dataset_table(vessel, "sam2lora_zero_shot", mode="native_fov")
    assert ours.attrs["prompt"] == "none"  # one prompt mode: no all_modes row there
    assert list(ours.index) == ["drive"] and ours.loc["drive", "Dice"] == "0.900 ± 0.010"
    extra = rep.per_dataset_table(vessel, "sam2lora-r32-alpha64", test_sets=["drive", "hrf"])
    assert (extra.loc["hrf"] == "–").all() and "hrf" in extra.attrs["missing"][0]
    gone = rep.per_dataset_table(vessel, "sam2lora-r8-alpha16")
    assert gone.empty
    assert gone.attrs["missing"] == ["sam2lora-r8-alpha16: no row in mode sam2lora_ref"]


def test_prompt_mode_table(vessel: pd.DataFrame) -> None:
    table = rep.prompt_mode_table(vessel, "sam2lora-r256-alpha512")
    assert list(table.index) == ["none", "1pt", "box", "all_modes"]
    assert list(table.columns) == ["drive", "stare"]
    assert table.loc["1pt", "stare"] == "0.590 ± 0.010"  # 0.4 + 0.14 + 0.05
    assert table.loc["box", "stare"] == "–"
    assert table.loc["all_modes", "drive"] == "0.740 ± 0.132"
    assert len(table.attrs["missing"]) == 1
    chosen = rep.prompt_mode_table(vessel, "sam2lora_zero_shot", prompts=["box", "5pt"])
    assert list(chosen.index) == ["box", "5pt"] and (chosen.loc["5pt"] == "–").all()


def test_lora_rank_parsing() -> None:
    assert rep.lora_rank("sam2lora-r32-alpha64") == 32
    assert rep.lora_rank("sam2lora-r1024-alpha2048") == 1024
    assert rep.lora_rank("sam2lora-ref") is None and rep.lora_rank("sam2lora_zero_shot") is None


def test_rank_bars_data_order_and_std(vessel: pd.DataFrame) -> None:
    data = rep.rank_bars_data(vessel, "dice")
    assert list(dict.fromkeys(data["label"])) == ["zero-shot", "r = 32", "r = 64", "r = 256",
                                                  "r = 1024"]
    assert list(data["rank"].dropna()) == sorted(data["rank"].dropna())
    assert data.attrs["prompts"] == ["none", "1pt", "box"]
    cell = data.set_index(["method", "test_set"]).loc[("sam2lora-r64-alpha128", "drive")]
    by_hand = [0.62, 0.67, 0.87]
    assert cell["mean"] == pytest.approx(sum(by_hand) / 3)
    assert cell["std"] == pytest.approx(0.1322875655532295)  # sqrt(0.0175), ddof=1
    assert cell["std"] == pytest.approx(np.std(by_hand, ddof=1)) and cell["n_modes"] == 3
    row = vessel[(vessel["method"] == "sam2lora-r64-alpha128") & (vessel["test_set"] == "drive")
                 & (vessel["prompt"] == "all_modes")].iloc[0]
    assert cell["std"] == pytest.approx(row["dice_std"])  # = aggregate's all_modes row
    # a cell lacking a prompt mode is not averaged over the rest (aggregate's row is)
    gap = data.set_index(["method", "test_set"]).loc[("sam2lora-r256-alpha512", "stare")]
    assert math.isnan(gap["mean"]) and gap["n_modes"] == 0
    assert data.attrs["missing"] == [GAP]
    two = rep.rank_bars_data(vessel, "auc", prompts=["none", "box"])
    first = two.iloc[0]
    assert first["mean"] == pytest.approx(0.925)  # zero-shot drive AUC: 0.8, 1.05
    assert first["std"] == pytest.approx(0.25 / math.sqrt(2))
    no_zs = rep.rank_bars_data(vessel[vessel["method"] != "sam2lora_zero_shot"])
    assert no_zs["label"].iloc[0] == "r = 32" and "sam2lora_zero_shot" in no_zs.attrs["missing"][0]


def test_rank_bars_figure(vessel: pd.DataFrame) -> None:
    import seaborn as sns

    fig = rep.rank_bars_figure(vessel, "dice")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "zero-shot", "r = 32", "r = 64", "r = 256", "r = 1024"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["drive", "stare"]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    errs = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [len(b) for b in bars] == [2, 2, 2, 1, 2]  # r256 has no stare bar
    assert bars[0][0].get_height() == pytest.approx(0.6)  # zero-shot drive
    assert bars[2][1].get_height() == pytest.approx(0.62)  # r64 stare: 0.4 + 0.12 + 0.1
    palette = sns.color_palette("colorblind", 5)
    assert [tuple(b[0].get_facecolor()[:3]) for b in bars] == [tuple(c) for c in palette]
    seg = errs[2].lines[2][0].get_segments()[0]  # r64 on drive
    assert (seg[1][1] - seg[0][1]) / 2 == pytest.approx(0.1322875655532295)
    assert seg[0][0] == pytest.approx(bars[2][0].get_x() + bars[2][0].get_width() / 2)
    assert "3 prompt modes" in ax.get_title()
    auc = rep.rank_bars_figure(vessel, "auc")
    assert auc.axes[0].get_ylabel() == "AUC"
    no_ranks = vessel[~vessel["method"].str.contains("-r") & (vessel["method"] != rep.ZERO_SHOT)]
    with pytest.raises(ValueError, match="nothing|no zero-shot"):
        rep.rank_bars_figure(no_ranks, "dice")


@pytest.fixture
def placement() -> pd.DataFrame:
    rows = []
    for m, d in (("sam2lora", 0.2), ("sam2lora-targets=decoder_attn", 0.1),
                 ("sam2lora-targets=encoder_attn", 0.0)):
        for train, test, base in (("disc_union", "refuge2", 0.8), ("vessel_union", "drive", 0.6),
                                  ("vessel_union", "stare", 0.5)):
            if (m, test) == ("sam2lora-targets=encoder_attn", "refuge2"):
                continue
            for prompt, off in (("none", 0.0), ("box", 0.1)):
                rows.append(_row(m, train, test, prompt, base + d + off))
    return add_mode_rows(pd.DataFrame(rows))


def test_placement_table(placement: pd.DataFrame) -> None:
    table = rep.placement_table(placement)
    assert list(table.index) == ["encoder", "decoder", "encoder + decoder"]
    assert list(table.columns) == [("disc_union", "refuge2"), ("disc_union", "mean"),
                                   ("vessel_union", "drive"), ("vessel_union", "stare"),
                                   ("vessel_union", "mean")]
    assert table.attrs["prompt"] == "all_modes"
    # decoder, drive: 0.7 and 0.8 over two prompt modes -> 0.750 ± 0.071
    assert table.loc["decoder", ("vessel_union", "drive")] == "0.750 ± 0.071"
    assert table.loc["decoder", ("vessel_union", "mean")] == "0.700"  # (0.75 + 0.65) / 2
    assert table.loc["encoder + decoder", ("disc_union", "mean")] == "1.050"
    assert table.loc["encoder", ("disc_union", "refuge2")] == "–"
    assert table.loc["encoder", ("disc_union", "mean")] == "–"  # not from fewer test sets
    absent = ("sam2lora-targets=encoder_attn / disc_union / refuge2 / prompt all_modes / "
              "sam2lora_ref: no summary row")
    assert table.attrs["missing"] == [absent]
    none = rep.placement_table(placement, prompt="none", labels={"sam2lora": "both"})
    assert list(none.index) == ["both"] and none.loc["both", ("vessel_union", "stare")] == \
        "0.700 ± 0.010"


def test_loss_table_and_labels() -> None:
    names = ["sam2lora", "sam2lora-bce0-dice1-focal_tversky1", "sam2lora-bce1-dice0-focal_tversky0",
             "sam2lora-bce0-dice0-focal_tversky1", "sam2lora-bce1-dice1-focal_tversky0",
             "sam2lora-bce0-dice1-focal_tversky0", "sam2lora-bce1-dice0-focal_tversky1",
             "sam2lora-r32-alpha64"]
    rows = [_row(n, "vessel_union", "drive", "none", 0.5 + i / 100) for i, n in enumerate(names)]
    table = rep.loss_table(pd.DataFrame(rows))
    assert list(table.index) == ["BCE", "Dice", "FocalTversky", "BCE + Dice", "BCE + FocalTversky",
                                 "Dice + FocalTversky", "BCE + Dice + FocalTversky"]
    assert table.attrs["prompt"] == "none"
    assert table.loc["Dice + FocalTversky", ("vessel_union", "drive")] == "0.510 ± 0.010"
    assert table.loc["BCE + Dice + FocalTversky", ("vessel_union", "mean")] == "0.500"
    assert rep.loss_label("sam2lora-bce0.5-dice1-focal_tversky0") == "0.5·BCE + Dice"
    assert rep.loss_label("sam2lora-r32-alpha64") is None
    assert rep.placement_label("sam2lora-r32-alpha64") is None
    assert rep.placement_label("sam2lora-targets=encoder_attn+decoder_attn") == \
        "encoder + decoder"


def test_names_and_defaults_match_params_yaml() -> None:
    """The variant names the studies derive parse, and the base method's defaults hold."""
    from samlora.config import load_config
    from samlora.study.studies import method_variants

    cfg = load_config([ROOT / "params.yaml"])
    names = {s: [v[0] for e in cfg.studies[s].methods for v in method_variants(cfg, e, s)]
             for s in ("sam2lora_vessel", "sam2lora_placement", "sam2lora_loss")}
    assert [rep.lora_rank(n) for n in names["sam2lora_vessel"]] == [
        None, 32, 64, 128, 256, 512, 1024] and names["sam2lora_vessel"][0] == rep.ZERO_SHOT
    assert [rep.placement_label(n) for n in names["sam2lora_placement"]] == [
        "encoder", "decoder", "encoder + decoder"]
    losses = [rep.loss_label(n) for n in names["sam2lora_loss"]]
    assert None not in losses and len(set(losses)) == 7
    base = yaml.safe_load((ROOT / "params.yaml").read_text())["methods"]["sam2lora"]
    assert tuple(base["lora"]["targets"]) == rep.BASE_TARGETS
    assert {k: base["loss"][k] for k in rep.LOSS_LABELS if base["loss"].get(k)} == rep.BASE_LOSS


def test_trainable_share_table() -> None:
    params = pd.DataFrame({"r": [64, 32, 1024], "lora": [7_864_320, 3_932_160, 125_829_120],
                           "pct_of_sam2": [3.47, 1.76, math.nan],
                           "pct_of_segmenter": [3.55, 1.8, 36.94]})
    table = rep.trainable_share_table(params)
    assert list(table.index) == [32, 64, 1024] and table.index.name == "Rank r"
    assert list(table.columns) == ["Trainable parameters", "Share of SAM 2 (%)",
                                   "Share of segmenter (%)"]
    assert table.loc[32, "Trainable parameters"] == "3,932,160"
    assert table.loc[32, "Share of segmenter (%)"] == "1.80"
    assert table.loc[1024, "Share of SAM 2 (%)"] == "–"
    assert table.attrs["missing"] == ["r 1024: no pct_of_sam2"]
    other = rep.trainable_share_table(pd.DataFrame({"r": [8], "trainable": [100], "pct": [0.5]}))
    assert other.loc[8].tolist() == ["100", "0.50"]
    with pytest.raises(ValueError, match="'r'"):
        rep.trainable_share_table(pd.DataFrame({"lora": [1]}))


def test_prompt_order_matches_prompts_module() -> None:
    """PROMPT_ORDER lists models.prompts.EVAL_MODES (read from its source: no torch import)."""
    import ast

    tree = ast.parse((ROOT / "src/samlora/models/prompts.py").read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.AnnAssign)
                and getattr(n.target, "id", "") == "EVAL_MODES")
    assert tuple(k.value for k in node.value.keys) == rep.PROMPT_ORDER


def test_summary_without_mode_column_is_ours_and_duplicate_ranks(vessel: pd.DataFrame) -> None:
    plain = vessel[vessel["mode"] == "sam2lora_ref"].drop(columns="mode")
    assert rep.per_dataset_table(plain, "sam2lora-r32-alpha64").empty  # no paper-mode rows
    ours = rep.per_dataset_table(plain, "sam2lora-r32-alpha64", mode="native_fov")
    assert ours.loc["drive", "Dice"] == "0.700 ± 0.132"
    twin = vessel.assign(method=vessel["method"].replace("sam2lora-r64-alpha128",
                                                         "sam2lora-r32-alpha32"))
    with pytest.raises(ValueError, match="share a rank"):
        rep.rank_bars_data(twin)
