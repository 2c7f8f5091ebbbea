"""Which weights each summary row was computed from: the epoch (or step) ``train.select``
kept, read from the ``predictions.json`` beside each per-image table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from samlora.evaluation.evaluate import META_COLUMNS

GROUP = ("method", "train_set", "test_set")
#: Summary columns: the rule, and per seed (in seed order) the kept epoch, step and score.
SELECTED_COLUMNS = ("selected_by", "selected_epochs", "selected_steps", "selected_scores")


def read_selected(paths: Sequence[Path]) -> pd.DataFrame:
    """Per run and test set, its ``selected`` record (rule, epoch, step, score).

    A per-image table without a ``predictions.json`` (the human baseline) or whose
    predictions carry no selection (a zero-shot run) gives no row.
    """
    rows = []
    for path in paths:
        pred_path = Path(path).with_name("predictions.json")
        if not pred_path.is_file():
            continue
        try:
            pred = json.loads(pred_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        sel = pred.get("selected") or {}
        if not isinstance(sel, dict) or not sel.get("by"):
            continue
        rows.append({**{k: str(pred.get(k, "")) for k in META_COLUMNS},
                     "by": str(sel["by"]), "epoch": str(sel.get("epoch") or ""),
                     "step": str(sel.get("step") or ""), "score": str(sel.get("score") or "")})
    return pd.DataFrame(rows, columns=[*META_COLUMNS, "by", "epoch", "step", "score"])


def add_selected(summary: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with :data:`SELECTED_COLUMNS` per method × train × test set (values per
    seed joined by ``,`` in seed order; empty for rows without a selection, e.g. human)."""
    if selected.empty:
        return summary
    selected = selected.drop_duplicates([*GROUP, "seed"])
    selected = selected.assign(order=pd.to_numeric(selected["seed"], errors="coerce"))
    per_group = []
    for key, group in selected.sort_values(["order", "seed"]).groupby(list(GROUP), sort=False):
        per_group.append({**dict(zip(GROUP, key)),
                          "selected_by": ",".join(dict.fromkeys(group["by"])),
                          "selected_epochs": ",".join(group["epoch"]),
                          "selected_steps": ",".join(group["step"]) if group["step"].any() else "",
                          "selected_scores": ",".join(group["score"])})
    table = pd.DataFrame(per_group, columns=[*GROUP, *SELECTED_COLUMNS])
    out = summary.merge(table, on=list(GROUP), how="left", sort=False)
    out[list(SELECTED_COLUMNS)] = out[list(SELECTED_COLUMNS)].fillna("")
    return out
