"""Result tables built from ``results/summary.csv`` (see ``samlora.evaluation.aggregate``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

#: Metric id -> column label, in table order.
METRIC_LABELS = {"dice": "Dice", "iou": "IoU", "auc": "AUC", "cldice": "clDice"}
#: Index levels of :func:`main_table`.
INDEX_LABELS = {"method": "Method", "train_set": "Train set", "test_set": "Test set"}


def format_mean_std(mean: float, std: float, decimals: int = 3) -> str:
    """``"0.812 ± 0.004"``; only the mean when std is nan (one seed); "–" when mean is nan."""
    if mean is None or not math.isfinite(float(mean)):
        return "–"
    if std is None or not math.isfinite(float(std)):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def main_table(summary: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """The main results table: one row per method × train set × test set.

    Args:
        summary: table written by ``aggregate`` (``method, train_set, test_set`` and
            ``<metric>_mean``/``<metric>_std`` columns).
        decimals: digits after the decimal point.

    Returns:
        String cells "mean ± std" (std over seeds) indexed by (Method, Train set,
        Test set), plus Prompt when ``summary`` has a ``prompt`` column (prompted methods),
        columns Dice, IoU, AUC, clDice (those present in ``summary``), rows in the order
        of ``summary``.

    Raises:
        ValueError: ``summary`` lacks the identity columns or holds no known metric.
    """
    missing = [c for c in INDEX_LABELS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks column(s) {missing}")
    metrics = [m for m in METRIC_LABELS if f"{m}_mean" in summary.columns]
    if not metrics:
        raise ValueError(f"summary holds none of the metrics {list(METRIC_LABELS)}")
    labels = {**INDEX_LABELS, **({"prompt": "Prompt"} if "prompt" in summary.columns else {})}
    table = pd.DataFrame(index=pd.MultiIndex.from_frame(
        summary[list(labels)].astype(str), names=list(labels.values())))
    for m in metrics:
        nan = [float("nan")] * len(summary)
        std = summary[f"{m}_std"] if f"{m}_std" in summary.columns else nan
        table[METRIC_LABELS[m]] = [format_mean_std(a, b, decimals)
                                   for a, b in zip(summary[f"{m}_mean"], std)]
    return table


def save_table(table: pd.DataFrame, path: Path) -> Path:
    """Write a table as CSV (index kept) atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, encoding="utf-8")
    log.info("table written to %s", path)
    return Path(path)
