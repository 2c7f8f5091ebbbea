"""Human baseline: the second annotator of a prepared dataset scored against the reference.

Where a prepared dataset's ``index.csv`` names a second-observer mask (column ``mask2``,
e.g. DRIVE test ``2nd_manual``, CHASE_DB1 ``2ndHO``, STARE ``vk``), that mask is scored
against the reference label (``mask``) inside the FOV with the same per-image code as a
model's predictions: :func:`samlora.evaluation.metrics.compute_metrics` with the binary
mask as both prediction and probability map. The table has the layout of evaluate's
``metrics_per_image.csv``, with ``method="human"``, ``train_set="-"``, ``seed="-"``.

The confusion-count metrics ``accuracy``, ``sensitivity`` and ``specificity`` (and
``precision``) are computed here from the counts inside the FOV when
:mod:`samlora.evaluation.metrics` does not know them by name; a name it does know is
always left to it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from samlora.evaluation.evaluate import META_COLUMNS, load_test_cases, read_mask_png
from samlora.evaluation.metrics import check_metric_names, compute_metrics

log = logging.getLogger(__name__)

HUMAN_METHOD = "human"
#: Placeholder of ``train_set`` and ``seed`` for the human baseline (nothing trained).
NO_RUN = "-"
#: Metrics this module computes from the confusion counts when metrics.py lacks them.
COUNT_METRICS = ("accuracy", "sensitivity", "specificity", "precision")


def confusion_counts(pred: np.ndarray, gt: np.ndarray,
                     fov: np.ndarray | None) -> dict[str, int]:
    """True/false positives/negatives of boolean ``pred`` against ``gt`` inside ``fov``."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    if fov is not None:
        inside = fov.astype(bool)
        pred, gt = pred[inside], gt[inside]
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred & ~gt))
    fn = int(np.count_nonzero(~pred & gt))
    tn = int(pred.size - tp - fp - fn)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def count_metric(name: str, c: dict[str, int]) -> float:
    """A confusion-count metric; nan where its denominator is 0.

    accuracy = (tp+tn)/all, sensitivity = tp/(tp+fn), specificity = tn/(tn+fp),
    precision = tp/(tp+fp).
    """
    num, den = {
        "accuracy": (c["tp"] + c["tn"], c["tp"] + c["tn"] + c["fp"] + c["fn"]),
        "sensitivity": (c["tp"], c["tp"] + c["fn"]),
        "specificity": (c["tn"], c["tn"] + c["fp"]),
        "precision": (c["tp"], c["tp"] + c["fp"]),
    }[name]
    return num / den if den else float("nan")


def _split_names(metrics: Sequence[str]) -> tuple[list[str], list[str]]:
    """(names metrics.py computes, names computed here from counts); ValueError otherwise."""
    known, local = [], []
    for name in metrics:
        try:
            check_metric_names([name])
            known.append(name)
        except ValueError:
            if name not in COUNT_METRICS:
                raise
            local.append(name)
    return known, local


def _read(processed_dir: Path, row: dict[str, str], column: str) -> np.ndarray:
    """The native-size label of ``column`` (``native_<column>`` where prepared resized)."""
    return read_mask_png(processed_dir / (row.get(f"native_{column}") or row[column]))


def dataset_id(processed_dir: Path) -> str:
    """The registry id of a prepared folder (``dataset.json``'s ``id``), else its name."""
    info_path = Path(processed_dir) / "dataset.json"
    if info_path.is_file():
        try:
            found = json.loads(info_path.read_text()).get("id")
        except (json.JSONDecodeError, AttributeError):
            found = None
        if found:
            return str(found)
    return Path(processed_dir).name


def human_case(processed_dir: Path, row: dict[str, str], metrics: Sequence[str],
               threshold: float = 0.5) -> dict[str, float]:
    """Metrics of one case's second-observer mask against its reference, inside the FOV.

    Raises:
        ValueError: the second-observer mask or the FOV differs in size from the reference.
    """
    known, local = _split_names(metrics)
    gt = _read(processed_dir, row, "mask")
    second = _read(processed_dir, row, "mask2")
    if second.shape != gt.shape:
        raise ValueError(f"{processed_dir}: case {row['case']}: second-observer mask is "
                         f"{second.shape} but the reference is {gt.shape}")
    fov = _read(processed_dir, row, "fov") if row.get("fov") else None
    if fov is not None and fov.shape != gt.shape:
        raise ValueError(f"{processed_dir}: case {row['case']}: FOV is {fov.shape} but the "
                         f"reference is {gt.shape}")
    prob = second.astype(np.float64)  # 0/1: the binary mask is its own probability map
    out = compute_metrics(prob, gt, fov, threshold=threshold, names=known) if known else {}
    if local:
        counts = confusion_counts(prob >= threshold, gt, fov)
        out.update({name: count_metric(name, counts) for name in local})
    return {name: float(out[name]) for name in metrics}


def human_per_image(processed_dir: Path, metrics: Sequence[str],
                    threshold: float = 0.5) -> pd.DataFrame:
    """Per-image human baseline of one prepared dataset.

    Args:
        processed_dir: ``data/processed/<test_set>/``; the test set is its
            ``dataset.json`` id (its folder name where there is none).
        metrics: metric names (those of :mod:`samlora.evaluation.metrics`, plus
            :data:`COUNT_METRICS`).
        threshold: passed to ``compute_metrics`` (any value in (0, 1] gives the mask).

    Returns:
        Columns ``method, train_set, test_set, seed, case`` then one per metric, one row
        per test case with both a reference and a second-observer mask (file order); no
        rows when the dataset has no second observer.
    """
    processed_dir = Path(processed_dir)
    metrics = list(metrics)
    _split_names(metrics)  # fail early on an unknown name
    cases = load_test_cases(processed_dir)
    if "mask2" not in cases.columns:
        cases = cases.assign(mask2="")
    both = cases[(cases["mask"] != "") & (cases["mask2"] != "")]
    if both.empty:
        log.info("%s: no test case has a second-observer mask", processed_dir)
    meta = {"method": HUMAN_METHOD, "train_set": NO_RUN, "test_set": dataset_id(processed_dir),
            "seed": NO_RUN}
    rows = [{**meta, "case": row["case"],
             **human_case(processed_dir, row, metrics, threshold)}
            for row in both.to_dict("records")]
    return pd.DataFrame(rows, columns=[*META_COLUMNS, "case", *metrics])
