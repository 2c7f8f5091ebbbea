"""Evaluate one run's probability maps on one prepared test set, image by image.

A test case prepared without a reference label (an empty ``mask`` column, e.g. DRIVE's
test set in the current download) is predicted but not scored: its map must exist, it has
no row in ``metrics_per_image.csv``, and ``metrics.json`` counts it under ``unscored`` with
a ``note`` saying why (also logged).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from samlora.data.datasets import select_label
from samlora.evaluation.metrics import check_metric_names
from samlora.evaluation.modes import (
    DEFAULT_MODE,
    MODE_COLUMN,
    MODES,
    POOL_COLUMN,
    CaseContext,
    EvalMode,
    decode_pool,
    get_modes,
    metric_union,
    pooled_values,
    score,
)
from samlora.utils.cpus import allocated_cpus
from samlora.utils.io import atomic_path, read_prob_png, write_json

log = logging.getLogger(__name__)

#: Columns that identify a run; every per-image CSV starts with these, then ``case``.
META_COLUMNS = ("method", "train_set", "test_set", "seed")
PER_IMAGE_CSV = "metrics_per_image.csv"
METRICS_JSON = "metrics.json"


def read_predictions(pred_dir: Path) -> dict[str, Any]:
    """``predictions.json`` of a results folder, with the run identity it was predicted for.

    Method, train set and seed come from the run itself (predict copies them from the
    run's config.yaml), never from folder names. Records written before ``train_set`` was
    recorded take it from the run folder's ``config.yaml``.

    Raises:
        FileNotFoundError: no predictions.json (run the predict step first).
        ValueError: the file is not JSON or lacks the run identity.
    """
    path = Path(pred_dir) / "predictions.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions; run the predict step for this run "
                                "and test set first")
    try:
        pred = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); run the predict step again") from None
    if not isinstance(pred, dict) or any(k not in pred for k in ("run", "method", "seed")):
        raise ValueError(f"{path}: not a samlora predictions record; run the predict step again")
    if "train_set" not in pred:
        from samlora.evaluation.predict import read_run_config

        pred["train_set"] = read_run_config(Path(pred["run"]))["train_set"]
    return pred


def read_mask_png(path: Path) -> np.ndarray:
    """Read an 8-bit 0/255 mask (any PIL-readable image) as H×W bool (grey value >= 128)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) >= 128


def load_test_cases(processed_dir: Path) -> pd.DataFrame:
    """Rows of ``processed_dir/index.csv`` whose split is ``test``, in file order.

    Raises:
        FileNotFoundError: no index.csv in ``processed_dir``.
        ValueError: the index lacks a required column or has no test case.
    """
    index_path = Path(processed_dir) / "index.csv"
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} not found: prepare the dataset first")
    index = pd.read_csv(index_path, dtype=str, keep_default_na=False)
    missing = {"case", "split", "mask", "fov"} - set(index.columns)
    if missing:
        raise ValueError(f"{index_path} lacks column(s) {sorted(missing)}")
    test = index[index["split"] == "test"].reset_index(drop=True)
    if test.empty:
        raise ValueError(f"{index_path} has no case with split 'test'")
    return test


def unscored_note(processed_dir: Path, n: int) -> str:
    """Why ``n`` test cases of a prepared folder are not scored, from its ``dataset.json``
    (the ``unlabelled`` note that prepare copied from the registry)."""
    info_path = Path(processed_dir) / "dataset.json"
    why = ""
    if info_path.is_file():
        try:
            why = (json.loads(info_path.read_text()).get("unlabelled") or {}).get("note", "")
        except (json.JSONDecodeError, AttributeError):
            why = ""
    return (f"{n} test case{'s have' if n != 1 else ' has'} "
            f"{why or 'no reference label in this release'}; predicted, not scored")


def _prob_paths(cases: Sequence[str], probs_dir: Path) -> list[Path]:
    """Prediction path of each case; FileNotFoundError naming every missing one."""
    paths = [Path(probs_dir) / f"{case}.png" for case in cases]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise FileNotFoundError(f"missing prediction(s) for {len(absent)} test case(s): {shown}")
    return paths


def _read_native(processed_dir: Path, row: Mapping[str, str], column: str) -> np.ndarray:
    """The native-size mask of ``column`` (``native_<column>`` where prepared resized)."""
    return read_mask_png(processed_dir / (row.get(f"native_{column}") or row[column]))


def _evaluate_case(
    row: Mapping[str, str],
    processed_dir: Path,
    prob_path: Path,
    threshold: float,
    metrics: Sequence[str],
    column: str = "mask",
    modes: Sequence[EvalMode] = (MODES[DEFAULT_MODE],),
    ctx: CaseContext | None = None,
) -> list[dict[str, float | str]]:
    """Metrics of one test case in each mode; ValueError naming the file on a size mismatch.

    Where the dataset was prepared at another resolution, the native-size label and FOV
    (``native_<column>``, ``native_fov``) are used: predictions are at native size. The
    second annotator (``mask2``) is read for a mode whose reference is the union.
    """
    mask_path = processed_dir / (row.get(f"native_{column}") or row[column])
    gt = read_mask_png(mask_path)
    prob = read_prob_png(prob_path)
    if prob.shape != gt.shape:
        raise ValueError(
            f"prediction {prob_path} is {prob.shape[1]}×{prob.shape[0]} (w×h) but its mask "
            f"{mask_path} is {gt.shape[1]}×{gt.shape[0]}: predictions must be at native size"
        )
    fov = None
    if row["fov"]:
        fov = _read_native(processed_dir, row, "fov")
        if fov.shape != gt.shape:
            raise ValueError(
                f"FOV mask {processed_dir / row['fov']} is {fov.shape} but mask {mask_path} "
                f"is {gt.shape}")
    gt2 = None
    if column == "mask" and row.get("mask2") and any(m.union for m in modes):
        gt2 = _read_native(processed_dir, row, "mask2")
        if gt2.shape != gt.shape:
            raise ValueError(f"second-observer mask of case {row['case']} in {processed_dir} "
                             f"is {gt2.shape} but its reference is {gt.shape}")
    ctx = ctx or CaseContext(dataset=processed_dir.name, index=0, n_cases=1)
    return [score(mode, prob, gt, fov, gt2, ctx, metrics, threshold) for mode in modes]


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


def is_vessel_dataset(dataset: str) -> bool:
    """Whether ``dataset`` is a registered vessel dataset (TopoLoRA-SAM scores clDice there)."""
    from samlora.data.registry import dataset_ids, get_dataset

    return dataset in dataset_ids() and get_dataset(dataset).task == "vessel"


def case_contexts(processed_dir: Path, n_cases: int, seed: object,
                  pixel_mm: float | None) -> list[CaseContext]:
    """The :class:`CaseContext` of each of ``n_cases`` test cases, in test order."""
    dataset = dataset_id(processed_dir)
    vessel = is_vessel_dataset(dataset)
    seed_int = int(seed) if str(seed).isdigit() else 0
    return [CaseContext(dataset, i, n_cases, seed_int, vessel, pixel_mm)
            for i in range(n_cases)]


def summarize(per_image: pd.DataFrame, metrics: Sequence[str]) -> dict[str, object]:
    """Mean and sample std (ddof=1) of each metric over images; images with nan are skipped.

    Returns:
        ``{metric: {"mean": m, "std": s, "n": k}, ..., "n": images}``; nan becomes None.
    """
    out: dict[str, object] = {"n": int(len(per_image))}
    for name in metrics:
        col = per_image[name].astype(float)
        out[name] = {
            "mean": _json_float(col.mean()),
            "std": _json_float(col.std(ddof=1)),
            "n": int(col.notna().sum()),
        }
    return out


def summarize_modes(table: pd.DataFrame, configured: Sequence[str]) -> dict[str, object]:
    """:func:`summarize` of each evaluation mode of a per-image table: the first mode's at
    the top level (``native_fov`` where present), every mode's under ``modes``.

    A pooled mode's pooled metrics (``topolora_ref``'s Dice, IoU, precision, recall, ECE)
    have as ``mean`` the value pooled over every test pixel, marked ``"pooled": true``.
    """
    if MODE_COLUMN not in table.columns:
        return summarize(table, configured)
    names = list(dict.fromkeys(table[MODE_COLUMN])) or [DEFAULT_MODE]
    per_mode: dict[str, object] = {}
    for name in names:
        mode = MODES[name]
        rows = table[table[MODE_COLUMN] == name]
        summary = summarize(rows, mode.metric_names(configured))
        if mode.pooled and len(rows):
            pooled = pooled_values(decode_pool(rows[POOL_COLUMN]).sum(axis=0))
            for metric in mode.pooled:
                summary[metric] = {**summary[metric], "mean": _json_float(pooled[metric]),
                                   "pooled": True}
        per_mode[name] = summary
    first = DEFAULT_MODE if DEFAULT_MODE in per_mode else names[0]
    return {**per_mode[first], "modes": per_mode}


def _json_float(x: float) -> float | None:
    """A float for JSON: nan/inf become None (JSON has no nan; DVC would choke on it)."""
    x = float(x)
    return x if math.isfinite(x) else None


def evaluate_predictions(
    processed_dir: Path,
    probs_dir: Path,
    out_dir: Path | None,
    threshold: float,
    metrics: Sequence[str],
    meta: Mapping[str, str],
    *,
    workers: int | None = None,
    label: str | None = None,
    config: Mapping[str, Any] | None = None,
    modes: Sequence[str] = (DEFAULT_MODE,),
    pixel_mm: float | None = None,
) -> pd.DataFrame:
    """Evaluate every test case of a prepared dataset against its predicted probabilities.

    Args:
        processed_dir: ``data/processed/<test_set>/`` holding ``index.csv``.
        probs_dir: folder of ``<case>.png`` 16-bit probability maps at native size.
        out_dir: where ``metrics_per_image.csv`` and ``metrics.json`` are written
            (atomically); None writes nothing (the caller combines tables).
        threshold: a pixel is predicted vessel when its probability is >= threshold.
        metrics: metric names (see :mod:`samlora.evaluation.metrics`).
        meta: run identity; must hold ``method``, ``train_set``, ``test_set``, ``seed``
            (extra keys become extra columns after these).
        workers: threads over images; default ``min(4, allocated_cpus())`` (the CPUs
            this job holds).
        label: the label kind to score against (``cup``); None = the dataset's primary
            label (column ``mask``). Test cases without that label are left out; those
            without a primary label are still required to have a prediction, and are
            counted (``unscored``, ``unscored_cases``, ``note``) in ``metrics.json``.
        config: the step's resolved config, written as ``evaluate_config.yaml`` with the
            outputs (None: not written).
        modes: evaluation modes (:mod:`samlora.evaluation.modes`), each scored on every
            case; ``metrics`` are those of ``native_fov``, the others have their own.
        pixel_mm: the test set's pixel size for the ``_mm`` metrics (None: nan).

    Returns:
        The per-image table: meta columns, ``mode``, ``case``, then one column per metric
        of any mode (nan where a mode lacks it), then ``pool`` when a mode pools.

    Raises:
        FileNotFoundError: index.csv or a prediction is missing (the message names it).
        ValueError: a prediction's size differs from its mask, or ``meta`` is incomplete.
    """
    processed_dir = Path(processed_dir)
    metrics = check_metric_names(metrics)
    eval_modes = get_modes(modes)
    absent = [k for k in META_COLUMNS if k not in meta]
    if absent:
        raise ValueError(f"meta lacks {absent}; it must name {list(META_COLUMNS)}")
    column, cases = select_label(processed_dir, load_test_cases(processed_dir), label, False)
    if cases.empty:
        raise ValueError(f"{processed_dir}: no test case has a {label!r} label")
    paths = _prob_paths(list(cases["case"]), Path(probs_dir))  # unlabelled ones predicted too
    labelled = (cases[column] != "").to_list()
    unscored = [c for c, ok in zip(cases["case"], labelled) if not ok]
    paths = [p for p, ok in zip(paths, labelled) if ok]
    cases = cases[labelled]
    extra: dict[str, Any] = {}
    if unscored:
        note = unscored_note(processed_dir, len(unscored))
        log.warning("%s: %s (%s)", processed_dir, note, ", ".join(unscored[:5])
                    + (" …" if len(unscored) > 5 else ""))
        extra = {"unscored": len(unscored), "unscored_cases": unscored, "note": note}
    rows = cases.to_dict("records")
    n_workers = max(1, min(workers or min(4, allocated_cpus()), len(rows)))
    log.info("evaluating %d test cases of %s in mode(s) %s with %d thread(s)", len(rows),
             processed_dir, ", ".join(m.name for m in eval_modes), n_workers)
    contexts = case_contexts(processed_dir, len(rows), meta["seed"], pixel_mm)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        results = list(pool.map(
            lambda job: _evaluate_case(job[0], processed_dir, job[1], threshold, metrics,
                                       column, eval_modes, job[2]),
            zip(rows, paths, contexts),
        ))
    meta_cols = list(META_COLUMNS) + [k for k in meta if k not in META_COLUMNS]
    names = metric_union(eval_modes, metrics)
    tail = [POOL_COLUMN] if any(m.pooled for m in eval_modes) else []
    table = pd.DataFrame(
        [{**{k: str(meta[k]) for k in meta_cols}, MODE_COLUMN: mode.name, "case": row["case"],
          **res}
         for mode_index, mode in enumerate(eval_modes)
         for row, per_mode in zip(rows, results) for res in [per_mode[mode_index]]],
        columns=[*meta_cols, MODE_COLUMN, "case", *names, *tail],
    )
    if out_dir is None:
        return table
    out_dir = Path(out_dir)
    summary = summarize_modes(table, metrics)
    run_meta = {k: str(meta[k]) for k in meta_cols}
    write_outputs(out_dir, table, {**summary, "threshold": float(threshold), "meta": run_meta,
                                   **extra}, config)
    log.info("%s: %s over %d images", out_dir,
             {m: (summary.get(m) or {}).get("mean") for m in metrics}, len(rows))
    return table


def write_outputs(out_dir: Path, table: pd.DataFrame, summary: Mapping[str, Any],
                  config: Mapping[str, Any] | None) -> None:
    """Write the evaluate step's outputs once every score is known.

    ``metrics.json`` (the step's completion marker) is removed first and written last, so
    an interrupted write never leaves a summary beside a per-image table it does not sum up.
    """
    from samlora.config import save_config

    out_dir = Path(out_dir)
    (out_dir / METRICS_JSON).unlink(missing_ok=True)
    with atomic_path(out_dir / PER_IMAGE_CSV) as tmp:
        table.to_csv(tmp, index=False)
    if config is not None:
        save_config(config, out_dir / "evaluate_config.yaml")
    write_json(out_dir / METRICS_JSON, dict(summary))
