"""Result tables built from ``results/summary.csv`` (see ``samlora.evaluation.aggregate``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

#: Metric id -> column label, in table order.
METRIC_LABELS = {"dice": "Dice", "iou": "IoU", "auc": "AUC", "cldice": "clDice",
                 "precision": "Precision", "sensitivity": "Sensitivity",
                 "specificity": "Specificity", "accuracy": "Accuracy", "mcc": "MCC",
                 "f1": "F1", "pr_auc": "PR AUC", "hd95": "HD95 (px)", "assd": "ASSD (px)",
                 "hd95_mm": "HD95 (mm)", "assd_mm": "ASSD (mm)", "boundary_iou": "Boundary IoU",
                 "bfscore": "BFScore", "betti0_error": "Betti-0 error",
                 "betti1_error": "Betti-1 error", "ece": "ECE"}
#: Index levels of :func:`main_table`.
INDEX_LABELS = {"method": "Method", "train_set": "Train set", "test_set": "Test set"}
#: Evaluation mode of our own numbers (:mod:`samlora.evaluation.modes`).
OUR_MODE = "native_fov"


def format_mean_std(mean: float, std: float, decimals: int = 3) -> str:
    """``"0.812 ± 0.004"``; only the mean when std is nan (one seed); "–" when mean is nan."""
    if mean is None or not math.isfinite(float(mean)):
        return "–"
    if std is None or not math.isfinite(float(std)):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def mode_rows(frame: pd.DataFrame, mode: str | None = OUR_MODE) -> pd.DataFrame:
    """Rows of one evaluation mode (every mode when ``mode`` is None; a frame without a
    ``mode`` column is all ours), prompt-free (``prompt == none``) where prompted."""
    if mode is not None and "mode" in frame.columns:
        frame = frame[frame["mode"].fillna(OUR_MODE) == mode]
    if "prompt" in frame.columns:
        frame = frame[frame["prompt"].fillna("none") == "none"]
    return frame.reset_index(drop=True)


def _has_values(summary: pd.DataFrame, metric: str) -> bool:
    return f"{metric}_mean" in summary.columns and summary[f"{metric}_mean"].notna().any()


def main_table(summary: pd.DataFrame, decimals: int = 3, mode: str | None = OUR_MODE,
               metrics: list[str] | None = None) -> pd.DataFrame:
    """The main results table: one row per method × train set × test set.

    Args:
        summary: table written by ``aggregate`` (``method, train_set, test_set`` and
            ``<metric>_mean``/``<metric>_std`` columns, and ``mode``).
        decimals: digits after the decimal point.
        mode: the evaluation mode whose rows are shown (None: every mode, as an index
            level); a summary without a ``mode`` column is all ours.
        metrics: metric ids to show (default: every metric of :data:`METRIC_LABELS` with
            a value in the rows shown).

    Returns:
        String cells "mean ± std" (std over seeds) indexed by (Method, Train set,
        Test set), plus Prompt when ``summary`` has a ``prompt`` column (prompted methods),
        one column per metric (labels of :data:`METRIC_LABELS`), rows in the order of
        ``summary``.

    Raises:
        ValueError: ``summary`` lacks the identity columns or holds no known metric.
    """
    missing = [c for c in INDEX_LABELS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks column(s) {missing}")
    if "mode" in summary.columns and mode is not None:
        summary = summary[summary["mode"] == mode].reset_index(drop=True)
    if metrics is None:
        metrics = [m for m in METRIC_LABELS if _has_values(summary, m)]
    metrics = [m for m in metrics if f"{m}_mean" in summary.columns]
    if not metrics:
        raise ValueError(f"summary holds none of the metrics {list(METRIC_LABELS)}")
    labels = {**INDEX_LABELS,
              **({"mode": "Mode"} if "mode" in summary.columns and mode is None else {}),
              **({"prompt": "Prompt"} if "prompt" in summary.columns else {})}
    table = pd.DataFrame(index=pd.MultiIndex.from_frame(
        summary[list(labels)].astype(str), names=list(labels.values())))
    for m in metrics:
        nan = [float("nan")] * len(summary)
        std = summary[f"{m}_std"] if f"{m}_std" in summary.columns else nan
        table[METRIC_LABELS[m]] = [format_mean_std(a, b, decimals)
                                   for a, b in zip(summary[f"{m}_mean"], std)]
    return table


def mode_table(summary: pd.DataFrame, method: str | None = None,
               train_set: str | None = None, test_set: str | None = None,
               decimals: int = 3) -> pd.DataFrame:
    """For one run, each metric in every evaluation mode: how much the mode alone moves it.

    Args:
        summary: ``aggregate``'s table with a ``mode`` column.
        method, train_set, test_set: the row to show; None picks the first (non-human,
            prompt-free) one scored in the most modes.
        decimals: digits of the values.

    Returns:
        One row per metric (label), one column per mode with its mean (as a float), and
        ``Δ <mode>`` = that mode's value minus ours for each other mode; "–"-free: a metric
        a mode does not compute is nan there.

    Raises:
        ValueError: no ``mode`` column, or no row matches.
    """
    if "mode" not in summary.columns:
        raise ValueError("summary has no 'mode' column: aggregate it again")
    rows = summary[summary["method"] != "human"]
    if "prompt" in rows.columns:
        rows = rows[rows["prompt"].fillna("none") == "none"]
    for col, value in (("method", method), ("train_set", train_set), ("test_set", test_set)):
        if value is not None:
            rows = rows[rows[col] == value]
    if rows.empty:
        raise ValueError(f"no summary row for method={method}, train_set={train_set}, "
                         f"test_set={test_set}")
    keys = ["method", "train_set", "test_set"]
    counts = rows.groupby(keys, sort=False)["mode"].nunique()
    pick = counts.idxmax()
    rows = rows.set_index(keys).loc[[pick]].reset_index().set_index("mode")
    from samlora.evaluation.modes import MODES

    modes = sorted(rows.index, key=lambda m: list(MODES).index(m) if m in MODES else len(MODES))
    metrics = [m for m in METRIC_LABELS if _has_values(rows, m)]
    table = pd.DataFrame(index=pd.Index([METRIC_LABELS[m] for m in metrics], name="Metric"))
    for mode in modes:
        table[mode] = [round(float(rows.loc[mode, f"{m}_mean"]), decimals) for m in metrics]
    if OUR_MODE in modes:
        for mode in modes:
            if mode != OUR_MODE:
                table[f"Δ {mode}"] = (table[mode] - table[OUR_MODE]).round(decimals)
    table.attrs["run"] = "/".join(str(k) for k in pick)
    return table


def save_table(table: pd.DataFrame, path: Path) -> Path:
    """Write a table as CSV (index kept) atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, encoding="utf-8")
    log.info("table written to %s", path)
    return Path(path)


def save_tables(table: pd.DataFrame, stem: Path) -> list[Path]:
    """Write ``table`` as ``<stem>.csv``, ``.tex`` and ``.md`` (each atomically)."""
    stem = Path(stem)
    out = [save_table(table, stem.with_suffix(".csv"))]
    with atomic_path(stem.with_suffix(".tex")) as tmp:
        tmp.write_text(table.to_latex(escape=True), encoding="utf-8")
    out.append(stem.with_suffix(".tex"))
    with atomic_path(stem.with_suffix(".md")) as tmp:
        tmp.write_text(markdown(table) + "\n", encoding="utf-8")
    out.append(stem.with_suffix(".md"))
    return out


def markdown(table: pd.DataFrame) -> str:
    """``table`` as a GitHub markdown table, index levels first ("|" escaped)."""
    frame = table.reset_index() if any(n is not None for n in table.index.names) else table
    cols = [str(c) for c in frame.columns]

    def cell(v: object) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def show_missing(table: pd.DataFrame) -> list:
    """Print what a table lacks (its ``attrs["missing"]``), so a partial study says so."""
    missing = list(table.attrs.get("missing") or [])
    if missing:
        shown = ", ".join(" / ".join(map(str, m)) if isinstance(m, tuple) else str(m)
                          for m in missing[:12])
        more = f" and {len(missing) - 12} more" if len(missing) > 12 else ""
        print(f"missing ({len(missing)}): {shown}{more}")
    return missing


def backbone_table(per_image_csvs: list[str] | list[Path]) -> pd.DataFrame:
    """Which backbone and weights produced each method's numbers, from the runs behind the
    per-image tables (``predictions.json`` beside each names its run folder, whose
    ``config.yaml`` records the backbone).

    Returns:
        One row per method: Method, Backbone, Architecture, Input (px), Weights (the
        checkpoint file, or "random" for a backbone without one); human rows are left out.
    """
    import json

    import yaml

    rows: dict[str, dict[str, str]] = {}
    for csv in per_image_csvs:
        pred = Path(csv).parent / "predictions.json"
        if not pred.is_file():
            continue  # the human baseline has no run
        run = Path(json.loads(pred.read_text()).get("run", ""))
        # a relative run folder is relative to the workflow's root, above the results
        bases = [Path()] if run.is_absolute() else [Path(), *pred.resolve().parents]
        cfg_path = next((b / run / "config.yaml" for b in bases
                         if (b / run / "config.yaml").is_file()), run / "config.yaml")
        if not cfg_path.is_file():
            log.warning("%s: run config %s not found; its backbone is not listed", pred, cfg_path)
            continue
        rc = yaml.safe_load(cfg_path.read_text())
        bcfg = rc.get("backbone_cfg") or {}
        ckpt = bcfg.get("checkpoint") or {}
        weights = ckpt.get("file") or bcfg.get("pretrained") or "random"
        rows.setdefault(rc["method"], {
            "Method": rc["method"], "Backbone": rc.get("backbone", ""),
            "Architecture": str(bcfg.get("arch", "")), "Input (px)": str(bcfg.get("img_size", "")),
            "Weights": str(weights), "Trainable": _trainable(cfg_path.parent)})
    return pd.DataFrame(list(rows.values()), columns=["Method", "Backbone", "Architecture",
                                                      "Input (px)", "Weights", "Trainable"]
                        ).set_index("Method")


def _trainable(run_dir: Path) -> float:
    """Trainable parameters a run's weights manifest records (nan without one)."""
    from safetensors import safe_open

    path = run_dir / "adapter.safetensors"
    if not path.is_file():
        return math.nan
    with safe_open(str(path), framework="pt") as f:
        return float((f.metadata() or {}).get("trainable", "nan"))
