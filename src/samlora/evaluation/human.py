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

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from samlora.evaluation.evaluate import (
    META_COLUMNS,
    case_contexts,
    dataset_id,
    load_test_cases,
    read_mask_png,
)
from samlora.evaluation.metrics import check_metric_names
from samlora.evaluation.modes import (
    DEFAULT_MODE,
    MODE_COLUMN,
    MODES,
    POOL_COLUMN,
    CaseContext,
    EvalMode,
    get_modes,
    metric_union,
    score,
)

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


def human_case(processed_dir: Path, row: dict[str, str], metrics: Sequence[str],
               threshold: float = 0.5, mode: EvalMode = MODES[DEFAULT_MODE],
               ctx: CaseContext | None = None) -> dict[str, float | str]:
    """Metrics of one case's second-observer mask against its reference in ``mode``
    (default: inside the FOV at native size).

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
    ctx = ctx or CaseContext(dataset_id(processed_dir), 0, 1)
    if mode.name != DEFAULT_MODE:
        return score(mode, prob, gt, fov, None, ctx, metrics, threshold)
    out = dict(score(mode, prob, gt, fov, None, ctx, known, threshold)) if known else {}
    if local:
        counts = confusion_counts(prob >= threshold, gt, fov)
        out.update({name: count_metric(name, counts) for name in local})
    return {name: float(out[name]) for name in metrics}


def human_per_image(processed_dir: Path, metrics: Sequence[str],
                    threshold: float = 0.5,
                    modes: Sequence[str] = (DEFAULT_MODE,)) -> pd.DataFrame:
    """Per-image human baseline of one prepared dataset.

    Args:
        processed_dir: ``data/processed/<test_set>/``; the test set is its
            ``dataset.json`` id (its folder name where there is none).
        metrics: metric names (those of :mod:`samlora.evaluation.metrics`, plus
            :data:`COUNT_METRICS`).
        threshold: passed to ``compute_metrics`` (any value in (0, 1] gives the mask).
        modes: evaluation modes; a mode whose reference is the union of the annotators
            (``sam2lora_ref``) is left out: the second observer is part of its reference.

    Returns:
        Columns ``method, train_set, test_set, seed, mode, case`` then one per metric of
        any mode (and ``pool`` for a pooled mode), one row per mode and test case with both
        a reference and a second-observer mask (file order); no rows when the dataset has
        no second observer.
    """
    processed_dir = Path(processed_dir)
    metrics = list(metrics)
    _split_names(metrics)  # fail early on an unknown name
    eval_modes = [m for m in get_modes(modes) if m.scores_human]
    cases = load_test_cases(processed_dir)
    if "mask2" not in cases.columns:
        cases = cases.assign(mask2="")
    both = cases[(cases["mask"] != "") & (cases["mask2"] != "")]
    if both.empty:
        log.info("%s: no test case has a second-observer mask", processed_dir)
    meta = {"method": HUMAN_METHOD, "train_set": NO_RUN, "test_set": dataset_id(processed_dir),
            "seed": NO_RUN}
    records = both.to_dict("records")
    contexts = case_contexts(processed_dir, len(records), 0, None)
    rows = [{**meta, MODE_COLUMN: mode.name, "case": row["case"],
             **human_case(processed_dir, row, metrics, threshold, mode, ctx)}
            for mode in eval_modes for row, ctx in zip(records, contexts)]
    tail = [POOL_COLUMN] if any(m.pooled for m in eval_modes) else []
    return pd.DataFrame(rows, columns=[*META_COLUMNS, MODE_COLUMN, "case",
                                       *metric_union(eval_modes, metrics), *tail])
