"""Evaluate a prompted method once per prompt mode, into one results folder.

Layout of ``results/<study>/<method>/<train>/seed<k>/<test>/`` for a prompted method (one
whose predictions.json lists modes beyond ``none``); prompt-free methods keep the plain
layout of :func:`samlora.evaluation.evaluate.evaluate_predictions`:

- ``probs/<case>.png``: prompt-free decoding (mode ``none``), where every method has it;
- ``probs/<mode>/<case>.png``: each prompted mode;
- ``metrics_per_image.csv``: one row per mode and case, with a ``prompt`` column after
  the run identity (``method, train_set, test_set, seed, prompt, case, <metrics>``);
- ``metrics.json``: the prompt-free summary at the top level, as for every method, plus
  ``prompts: {mode: summary}`` for each mode (``none`` included).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from pathlib import Path

import pandas as pd

from samlora.evaluation.evaluate import (
    evaluate_predictions,
    load_test_cases,
    summarize_modes,
    unscored_note,
    write_outputs,
)

log = logging.getLogger(__name__)

#: Column naming the prompt mode of a row in per-image and summary tables.
PROMPT_COLUMN = "prompt"
#: Mode of prompt-free decoding; rows without a prompt column belong to it.
NO_PROMPT = "none"


def mode_probs_dir(pred_dir: Path, mode: str) -> Path:
    """Folder of the probability maps of ``mode`` under a results folder."""
    return Path(pred_dir) / "probs" if mode == NO_PROMPT else Path(pred_dir) / "probs" / mode


def evaluate_prompt_modes(processed_dir: Path, pred_dir: Path, threshold: float,
                          metrics: Sequence[str], meta: Mapping[str, str],
                          modes: Sequence[str], label: str | None = None,
                          config: Mapping[str, Any] | None = None,
                          eval_modes: Sequence[str] = ("native_fov",),
                          pixel_mm: float | None = None) -> pd.DataFrame:
    """Score every mode's probability maps and write the combined per-image table.

    Args:
        processed_dir: ``data/processed/<test_set>/`` holding ``index.csv``.
        pred_dir: the results folder (holds ``probs/`` as written by the predict step);
            ``metrics_per_image.csv`` and ``metrics.json`` are written there atomically.
        threshold: probability threshold of the binary metrics.
        metrics: metric names.
        meta: run identity (``method``, ``train_set``, ``test_set``, ``seed``).
        modes: the evaluation modes; must include ``none``.
        label: label kind to score against (see ``evaluate_predictions``).
        config: the step's resolved config, written as ``evaluate_config.yaml`` on success.
        eval_modes, pixel_mm: as for ``evaluate_predictions`` (every prompt mode is scored
            in every evaluation mode).

    Returns:
        The combined per-image table (``prompt`` column after the run identity).

    Raises:
        ValueError: ``modes`` lacks ``none`` or repeats a mode.
        FileNotFoundError: a mode's prediction is missing (the message names it).
    """
    if NO_PROMPT not in modes or len(set(modes)) != len(modes):
        raise ValueError(f"prompt modes must include '{NO_PROMPT}' once, got {list(modes)}")
    if PROMPT_COLUMN in meta:
        raise ValueError(f"meta must not set '{PROMPT_COLUMN}': each mode sets it")
    tables = {mode: evaluate_predictions(processed_dir, mode_probs_dir(pred_dir, mode), None,
                                         threshold, metrics, {**meta, PROMPT_COLUMN: mode},
                                         label=label, modes=eval_modes, pixel_mm=pixel_mm)
              for mode in modes}
    table = pd.concat(list(tables.values()), ignore_index=True)
    per_mode = {mode: summarize_modes(t, metrics) for mode, t in tables.items()}
    write_outputs(Path(pred_dir), table,
                  {**per_mode[NO_PROMPT], "threshold": float(threshold),
                   "meta": {k: str(v) for k, v in meta.items()}, "prompts": per_mode,
                   **_unscored(processed_dir, label)}, config)
    log.info("%s: %s %s", pred_dir, metrics[0],
             {mode: (s.get(metrics[0]) or {}).get("mean") for mode, s in per_mode.items()})
    return table


def _unscored(processed_dir: Path, label: str | None) -> dict[str, object]:
    """``unscored``, ``unscored_cases`` and ``note`` for test cases without a reference
    label (predicted in every mode, scored in none), as the prompt-free summary has them."""
    if label is not None:  # cases without another label kind are left out, not unscored
        return {}
    test = load_test_cases(Path(processed_dir))
    cases = list(test.loc[test["mask"] == "", "case"])
    if not cases:
        return {}
    return {"unscored": len(cases), "unscored_cases": cases,
            "note": unscored_note(Path(processed_dir), len(cases))}
