"""Report outputs: tables in three formats, figures in two, the backbone behind the numbers,
our rows beside the papers', and both paper templates rendered from a summary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import save_file

from samlora.reporting.paper_numbers import ours_by_dataset
from samlora.reporting.tables import backbone_table, markdown, save_tables, show_missing

SUMMARY = pd.DataFrame([
    # method, train, test, mode, prompt, dice mean/std
    ("topolora_sam", "drive", "drive", "native_fov", "none", 0.80, 0.01),
    ("topolora_sam", "drive", "stare", "native_fov", "none", 0.60, 0.02),   # transfer
    ("topolora_sam", "drive", "drive", "topolora_ref", "none", 0.78, 0.01),
    ("sam2lora", "vessel_union", "chase_db1", "native_fov", "none", 0.70, 0.03),
    ("sam2lora", "vessel_union", "chase_db1", "native_fov", "box", 0.75, 0.03),
    ("human", "-", "drive", "native_fov", "none", 0.79, float("nan")),
], columns=["method", "train_set", "test_set", "mode", "prompt", "dice_mean", "dice_std"])


def test_tables_are_written_as_csv_tex_and_markdown(tmp_path: Path, capsys) -> None:
    table = pd.DataFrame({"Dice": ["0.800 ± 0.010", "–"]},
                         index=pd.Index(["a|b", "c"], name="Method"))
    table.attrs["missing"] = [("c", "drive")]
    written = save_tables(table, tmp_path / "t")
    assert [p.suffix for p in written] == [".csv", ".tex", ".md"]
    assert markdown(table) == ("| Method | Dice |\n|---|---|\n| a\\|b | 0.800 ± 0.010 |\n"
                               "| c | – |")
    assert (tmp_path / "t.md").read_text() == markdown(table) + "\n"
    assert "\\begin{tabular}" in (tmp_path / "t.tex").read_text()
    assert pd.read_csv(tmp_path / "t.csv").columns.tolist() == ["Method", "Dice"]
    assert show_missing(table) == [("c", "drive")]
    assert "missing (1): c / drive" in capsys.readouterr().out


def test_figures_are_written_as_png_and_pdf(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from samlora.reporting.figures import save_figures

    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    paths = save_figures(fig, tmp_path / "f")
    assert [p.name for p in paths] == ["f.png", "f.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"


def test_ours_by_dataset_keeps_in_domain_and_union_rows_of_one_mode_and_prompt() -> None:
    ours = ours_by_dataset(SUMMARY, "dice")
    assert ours.to_dict("records") == [
        {"method": "topolora_sam", "dataset": "drive", "mean": 0.80, "std": 0.01},
        {"method": "sam2lora", "dataset": "chase_db1", "mean": 0.70, "std": 0.03}]
    box = ours_by_dataset(SUMMARY, "dice", prompt="box")
    assert box["mean"].tolist() == [0.75]
    assert ours_by_dataset(SUMMARY, "dice", mode="topolora_ref")["mean"].tolist() == [0.78]


def test_the_backbone_table_reads_each_run_config_and_manifest(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "decoder_only__drive__seed0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({
        "method": "decoder_only", "backbone": "litemedsam",
        "backbone_cfg": {"arch": "litemedsam", "img_size": 256,
                         "checkpoint": {"file": "lite_medsam.pth"}}}))
    save_file({"w": torch.zeros(1)}, str(run / "adapter.safetensors"),
              metadata={"trainable": "4058340"})
    res = tmp_path / "results" / "runs" / run.name / "drive"
    res.mkdir(parents=True)
    (res / "predictions.json").write_text(json.dumps({"run": f"runs/{run.name}"}))
    human = tmp_path / "results" / "human" / "drive"
    human.mkdir(parents=True)
    table = backbone_table([res / "metrics_per_image.csv", human / "metrics_per_image.csv"])
    assert table.index.tolist() == ["decoder_only"]  # the run folder is found above results/
    row = table.loc["decoder_only"]
    assert (row["Backbone"], row["Architecture"], row["Input (px)"], row["Weights"],
            row["Trainable"]) == ("litemedsam", "litemedsam", "256", "lite_medsam.pth",
                                  4058340.0)


@pytest.mark.slow  # three papermill runs: ~45 s
@pytest.mark.parametrize("template", ["topolora_results", "sam2lora_results",
                                      "samlora_results"])
def test_paper_templates_render_from_a_summary(repo_root: Path, tmp_path: Path,
                                               template: str) -> None:
    from samlora.reporting.render import render_notebook

    nb = json.loads((repo_root / f"notebooks/{template}.ipynb").read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert any("parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    summary = tmp_path / "summary.csv"
    SUMMARY.to_csv(summary, index=False)
    out = tmp_path / "reports"
    render_notebook(repo_root / f"notebooks/{template}.ipynb", out / f"{template}.ipynb",
                    out / f"{template}.html",
                    {"summary_csv": summary, "per_image_csvs": [], "figures_dir": out / "figures",
                     "tables_dir": out / "tables"})
    assert (out / f"{template}.html").stat().st_size > 0
    if template == "samlora_results":  # no comparisons.csv beside this summary
        assert (out / "tables" / "topology.md").is_file()
        assert (out / "figures" / "head_to_head_dice.png").is_file()
        assert "no comparisons file" in (out / f"{template}.html").read_text()
        return
    assert (out / "tables" / "paper_vs_ours_dice.md").is_file()
    if template == "topolora_results":
        assert (out / "tables" / "benchmark_dice.csv").is_file()
        assert (out / "figures" / "heatmap_dice.png").is_file()
        assert (out / "figures" / "heatmap_dice.pdf").is_file()
    else:
        assert (out / "tables" / "per_dataset_sam2lora.csv").is_file()
