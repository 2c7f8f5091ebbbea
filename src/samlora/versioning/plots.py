"""The data ``dvc plots show`` / ``dvc plots diff`` draw (dvc.yaml's ``plots:``).

- ``plots/train/<run>.csv``: one row per epoch, joining the per-metric TSVs dvclive writes
  under ``runs/<run>/dvclive/plots/metrics/`` (train loss, learning rate, validation);
- ``plots/summary/<study>.csv``: one row per method and train -> test pair in the default
  evaluation mode, with its mean Dice (and clDice where scored), for bar charts.

Small, git-tracked files: experiments compare them across commits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from samlora.evaluation.modes import DEFAULT_MODE
from samlora.utils.io import make_temp_dir, write_text

#: summary columns drawn as bars (those a study has)
BAR_METRICS = ("dice", "cldice")


def training_curves(run_dir: Path) -> pd.DataFrame | None:
    """One run's per-epoch metrics from its dvclive TSVs, or None without any."""
    tsvs = sorted((run_dir / "dvclive" / "plots" / "metrics").glob("**/*.tsv"))
    frames = []
    for tsv in tsvs:
        frame = pd.read_csv(tsv, sep="\t")
        metric = [c for c in frame.columns if c not in ("step", "timestamp")]
        if "step" in frame.columns and metric:
            frames.append(frame.set_index("step")[metric])
    if not frames:
        return None
    table = pd.concat(frames, axis=1).sort_index()
    table.insert(0, "epoch", table.index + 1)
    return table.reset_index(drop=True)


def summary_bars(summary_csv: Path) -> pd.DataFrame | None:
    """A study summary's rows in the default mode as name + bar metrics, or None."""
    table = pd.read_csv(summary_csv)
    if "mode" in table.columns:
        table = table[table["mode"].fillna(DEFAULT_MODE) == DEFAULT_MODE]
    cols = [m for m in BAR_METRICS if f"{m}_mean" in table.columns]
    if table.empty or not cols:
        return None
    trained = table["train_set"].fillna("-").astype(str)
    name = (table["method"] + trained.map(lambda t: "" if t in ("-", "") else f" {t}")
            + " > " + table["test_set"])
    if "prompt" in table.columns:
        name = name + table["prompt"].fillna("").map(lambda p: f" ({p})" if p else "")
    out = pd.DataFrame({"name": name})
    for metric in cols:
        out[metric] = table[f"{metric}_mean"].round(6)
    return out.reset_index(drop=True)


def write_plots(repo: Path, out: Path = Path("plots")) -> int:
    """Rewrite ``out`` from the runs and the study summaries (whole, or not at all).
    Returns the number of files written."""
    repo = Path(repo)
    target = repo / out
    stage = make_temp_dir(target.parent, f".{target.name}-")
    written = 0
    try:
        for run_dir in sorted(p for p in (repo / "runs").glob("*") if p.is_dir()):
            curves = training_curves(run_dir)
            if curves is not None:
                write_text(stage / "train" / f"{run_dir.name}.csv", curves.to_csv(index=False))
                written += 1
        for summary in sorted((repo / "results").glob("*/summary.csv")):
            bars = summary_bars(summary)
            if bars is not None:
                write_text(stage / "summary" / f"{summary.parent.name}.csv",
                           bars.to_csv(index=False))
                written += 1
        if target.exists():
            shutil.rmtree(target)
        stage.rename(target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return written
