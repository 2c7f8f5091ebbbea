"""The papers' reported numbers: the committed CSV, the loader's errors, paper_vs_ours."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from samlora.config import REPO_ROOT
from samlora.reporting import paper_numbers as pn
from samlora.reporting.paper_numbers import load_paper_numbers, paper_vs_ours

HEADER = ("paper,table,dataset,method,paper_label,prompt,metric,value,source,source_kind,"
          "note\n")
GOOD = ("TopoLoRA-SAM,Table 2,drive,topolora_sam,TopoLoRA-SAM,,dice,0.690,https://x,paper,\n"
        "SAM2LoRA,Fig. 3,refuge2,sam2lora-r64-alpha128,SAM2LoRA r64,box,hd95,7.7,"
        "https://y,code,\"a, quoted note\"\n")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "numbers.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_committed_csv_loads_and_validates() -> None:
    df = load_paper_numbers()
    assert len(df) > 0
    assert list(df.columns) == [*pn.REQUIRED_COLUMNS, "prompt"]
    assert set(df["paper"]) <= set(pn.PAPERS)
    assert set(df["metric"]) <= set(pn.METRICS)
    assert set(df["source_kind"]) <= set(pn.SOURCE_KINDS)
    assert all(isinstance(v, float) and math.isfinite(v) for v in df["value"])
    ratios = df[~df["metric"].isin(pn.PIXEL_METRICS)]["value"]
    assert ratios.between(0.0, 1.0).all()
    assert (df["source"].str.len() > 0).all()


def test_topolora_numbers_are_secondary_and_say_they_are_unverified() -> None:
    """The TopoLoRA-SAM numbers come from a secondary summary only (the paper's tables could
    not be reached); each row says so, and a table marks them unconfirmed."""
    df = load_paper_numbers()
    topo = df[df["paper"] == "TopoLoRA-SAM"]
    assert len(topo) >= 5 and set(topo["source_kind"]) == {"secondary"}
    assert topo["note"].str.contains("UNVERIFIED").all()
    ours = pd.DataFrame({"method": ["topolora_sam"], "dataset": ["drive"], "mean": [0.7],
                         "std": [0.01]})
    row = paper_vs_ours(ours, df, "TopoLoRA-SAM", "dice").iloc[0]
    assert (row["paper"], row["source"]) == ("0.690", "secondary summary (unconfirmed)")


def test_known_lists_match_the_project() -> None:
    """Methods are params.yaml's; prompt modes are models.prompts.EVAL_MODES."""
    methods = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["methods"]
    assert set(pn.METHODS) <= set(methods)
    from samlora.models.prompts import EVAL_MODES

    assert set(pn.PROMPT_MODES) == set(EVAL_MODES)


def test_good_file_parses(tmp_path: Path) -> None:
    df = load_paper_numbers(_write(tmp_path, HEADER + GOOD))
    assert df["value"].tolist() == [0.690, 7.7]
    assert df["prompt"].tolist() == ["none", "box"]  # empty prompt is prompt-free
    assert df.loc[1, "note"] == "a, quoted note"


def test_prompt_column_is_optional(tmp_path: Path) -> None:
    text = ("paper,table,dataset,method,paper_label,metric,value,source,source_kind,note\n"
            "TopoLoRA-SAM,Table 2,drive,unet_r34,U-Net,dice,0.7,https://x,paper,\n")
    assert load_paper_numbers(_write(tmp_path, text))["prompt"].tolist() == ["none"]


@pytest.mark.parametrize("row, column, words", [
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,dice,81.2,https://x,paper,", "value",
     "fraction"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,dice,high,https://x,paper,", "value",
     "not a number"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,dice,nan,https://x,paper,", "value",
     "not finite"),
    ("SAM-Paper,Table 2,drive,topolora_sam,T,,dice,0.5,https://x,paper,", "paper",
     "unknown value"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,f2,0.5,https://x,paper,", "metric",
     "unknown value"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,dice,0.5,https://x,blog,", "source_kind",
     "unknown value"),
    ("TopoLoRA-SAM,Table 2,DRIVE,topolora_sam,T,,dice,0.5,https://x,paper,", "dataset",
     "unknown value"),
    ("TopoLoRA-SAM,Table 2,drive,nnunet,T,,dice,0.5,https://x,paper,", "method",
     "unknown method"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,3pt,dice,0.5,https://x,paper,", "prompt",
     "unknown prompt"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,hd95,-1,https://x,paper,", "value",
     "negative"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,dice,0.5,,paper,", "source", "empty"),
    ("TopoLoRA-SAM,Table 2,drive,topolora_sam,T,,dice,0,5,https://x,paper,", "note",
     "fields"),
])
def test_malformed_row_names_file_row_and_column(tmp_path: Path, row: str, column: str,
                                                 words: str) -> None:
    path = _write(tmp_path, HEADER + GOOD + row + "\n")
    with pytest.raises(ValueError) as info:
        load_paper_numbers(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert "row 3 (line 4)" in message
    assert f"column '{column}'" in message
    assert words in message


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "paper,table,dataset,method,paper_label,metric,source,"
                  "source_kind,note\n")
    with pytest.raises(ValueError, match=r"numbers\.csv: header, column 'value': missing"):
        load_paper_numbers(path)


def test_duplicate_number_is_refused(tmp_path: Path) -> None:
    first = GOOD.splitlines()[0]
    path = _write(tmp_path, HEADER + first + "\n" + first + "\n")
    with pytest.raises(ValueError, match=r"row 2 \(line 3\), column 'value': same number as row 1"):
        load_paper_numbers(path)


def _paper_frame(tmp_path: Path) -> pd.DataFrame:
    rows = [
        "TopoLoRA-SAM,Table 2,drive,topolora_sam,TopoLoRA-SAM,,dice,0.690,https://p,paper,",
        "TopoLoRA-SAM,summary,drive,topolora_sam,TopoLoRA-SAM,,dice,0.600,https://s,secondary,",
        "TopoLoRA-SAM,Table 2,chase_db1,topolora_sam,TopoLoRA-SAM,,dice,0.569,https://p,paper,",
        "TopoLoRA-SAM,Table 2,drive,unet_r34,U-Net,,dice,0.700,https://p,paper,",
        "TopoLoRA-SAM,Table 2,drive,topolora_sam,TopoLoRA-SAM,,cldice,0.8,https://p,paper,",
        "SAM2LoRA,Table 3,drive,sam2lora,SAM2LoRA,,dice,0.9,https://q,paper,",
    ]
    return load_paper_numbers(_write(tmp_path, HEADER + "\n".join(rows) + "\n"))


def test_paper_vs_ours_known_answer(tmp_path: Path) -> None:
    ours = pd.DataFrame({
        "method": ["topolora_sam", "unet_r34", "topolora_sam"],
        "dataset": ["drive", "drive", "stare"],
        "mean": [0.70123, 0.68, 0.8],
        "std": [0.0042, float("nan"), 0.02],
    })
    table = paper_vs_ours(ours, _paper_frame(tmp_path), "TopoLoRA-SAM", "dice")
    assert list(table.columns) == ["method", "dataset", "paper", "source", "ours",
                                   "difference"]
    assert table.to_dict("records") == [
        # the paper's own table beats the secondary summary's 0.600
        {"method": "topolora_sam", "dataset": "drive", "paper": "0.690",
         "source": "paper", "ours": "0.701 ± 0.004", "difference": "+0.011"},
        {"method": "unet_r34", "dataset": "drive", "paper": "0.700", "source": "paper",
         "ours": "0.680", "difference": "-0.020"},
        {"method": "topolora_sam", "dataset": "stare", "paper": "–", "source": "–",
         "ours": "0.800 ± 0.020", "difference": "–"},
        {"method": "topolora_sam", "dataset": "chase_db1", "paper": "0.569", "source": "paper",
         "ours": "–", "difference": "–"},
    ]


def test_paper_vs_ours_source_kinds_and_prompt(tmp_path: Path) -> None:
    frame = _paper_frame(tmp_path)
    ours = pd.DataFrame({"method": ["topolora_sam"], "dataset": ["drive"], "mean": [0.6],
                         "std": [0.0]})
    only_secondary = paper_vs_ours(ours, frame, "TopoLoRA-SAM", "dice",
                                   source_kinds=["secondary"])
    assert only_secondary.to_dict("records") == [
        {"method": "topolora_sam", "dataset": "drive", "paper": "0.600",
         "source": "secondary summary (unconfirmed)", "ours": "0.600 ± 0.000",
         "difference": "0.000"}]
    assert paper_vs_ours(ours, frame, "TopoLoRA-SAM", "dice", prompt="box")["paper"].tolist() \
        == ["–"]


def test_paper_vs_ours_bad_arguments(tmp_path: Path) -> None:
    frame = _paper_frame(tmp_path)
    ours = pd.DataFrame({"method": ["x"], "dataset": ["drive"], "mean": [0.5]})
    with pytest.raises(ValueError, match="std"):
        paper_vs_ours(ours, frame, "TopoLoRA-SAM", "dice")
    with pytest.raises(ValueError, match="unknown paper"):
        paper_vs_ours(ours.assign(std=0.0), frame, "SAM3", "dice")
    with pytest.raises(ValueError, match="unknown metric"):
        paper_vs_ours(ours.assign(std=0.0), frame, "SAM2LoRA", "f2")


def test_headline_table_is_our_maximum_over_the_claims_datasets() -> None:
    from samlora.reporting.paper_numbers import headline_table

    summary = pd.DataFrame({
        "method": ["sam2lora", "sam2lora", "sam2lora", "sam2lora", "unet_r34"],
        "train_set": ["vessel_union", "vessel_union", "drive", "disc_union", "drive"],
        "test_set": ["drive", "stare", "chase_db1", "refuge2", "drive"],
        "mode": "native_fov", "prompt": "none",
        "dice_mean": [0.80, 0.83, 0.99, 0.91, 0.95], "dice_std": 0.01,
        "auc_mean": [0.97, 0.96, 0.99, float("nan"), 0.99], "auc_std": 0.01})
    table = headline_table(summary, "SAM2LoRA", "sam2lora").set_index(["target", "metric"])
    # drive->chase_db1 is a transfer row and unet_r34 another method: neither counts
    assert table.loc[("vessel", "dice")].tolist() == ["0.86", "0.830", "stare", "2 of 5"]
    assert table.loc[("vessel", "auc")].tolist() == ["0.98", "0.970", "drive", "2 of 5"]
    assert table.loc[("disc", "dice")].tolist() == ["0.93", "0.910", "refuge2", "1 of 6"]
    assert table.loc[("disc", "auc")].tolist() == ["0.99", "–", "–", "0 of 6"]
    assert "2510.10288" in headline_table(summary, "SAM2LoRA", "sam2lora").attrs["source"]
