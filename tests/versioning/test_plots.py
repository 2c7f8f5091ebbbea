"""The plot data dvc.yaml's `plots:` draws: training curves from real dvclive output, and
summary bars from a study summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from samlora.versioning.plots import summary_bars, training_curves, write_plots


def _live_run(run_dir: Path, rows: list[dict[str, float]]) -> None:
    from dvclive import Live

    live = Live(dir=str(run_dir / "dvclive"), save_dvc_exp=False, dvcyaml=None, report=None)
    for row in rows:
        for key, value in row.items():
            live.log_metric(key, value)
        live.next_step()
    live.end()


def test_training_curves_join_dvclive_metrics_by_epoch(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "m__drive__seed0"
    _live_run(run, [{"train_loss": 1.5, "val_dice": 0.1}, {"train_loss": 1.0, "val_dice": 0.4}])
    table = training_curves(run)
    assert list(table["epoch"]) == [1, 2]
    assert list(table["train_loss"]) == [1.5, 1.0]
    assert list(table["val_dice"]) == [0.1, 0.4]
    assert training_curves(tmp_path / "runs" / "no_such_run") is None


def test_summary_bars_keep_the_default_mode_and_name_each_pair(tmp_path: Path) -> None:
    csv = tmp_path / "summary.csv"
    pd.DataFrame({
        "method": ["a", "a", "human"], "train_set": ["drive", "drive", "-"],
        "test_set": ["stare", "stare", "drive"],
        "mode": ["native_fov", "topolora_ref", "native_fov"],
        "dice_mean": [0.5, 0.6, 0.8], "dice_std": [0.1, 0.1, None],
    }).to_csv(csv, index=False)
    bars = summary_bars(csv)
    assert bars.to_dict("list") == {"name": ["a drive > stare", "human > drive"],
                                    "dice": [0.5, 0.8]}


def test_write_plots_replaces_the_folder_whole(tmp_path: Path) -> None:
    _live_run(tmp_path / "runs" / "r1", [{"train_loss": 2.0}])
    (tmp_path / "plots" / "train").mkdir(parents=True)
    (tmp_path / "plots" / "train" / "gone.csv").write_text("epoch\n1\n")
    (tmp_path / "results" / "s").mkdir(parents=True)
    pd.DataFrame({"method": ["a"], "train_set": ["drive"], "test_set": ["drive"],
                  "dice_mean": [0.25]}).to_csv(tmp_path / "results/s/summary.csv", index=False)
    assert write_plots(tmp_path) == 2
    assert sorted(p.relative_to(tmp_path / "plots").as_posix()
                  for p in (tmp_path / "plots").rglob("*.csv")) == ["summary/s.csv",
                                                                     "train/r1.csv"]


def test_a_summary_without_bar_metrics_draws_nothing(tmp_path: Path) -> None:
    csv = tmp_path / "summary.csv"
    pd.DataFrame({"method": ["a"], "train_set": ["d"], "test_set": ["d"],
                  "hd95_mean": [3.0]}).to_csv(csv, index=False)
    assert summary_bars(csv) is None
