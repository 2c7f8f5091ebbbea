"""Fixtures: the prepared DRIVE folder of tests/evaluation plus a fake run's results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samlora.evaluation.aggregate import aggregate
from samlora.evaluation.evaluate import evaluate_predictions, read_mask_png
from samlora.utils.io import write_json, write_prob_png

_spec = importlib.util.spec_from_file_location(
    "_evaluation_fixtures", Path(__file__).resolve().parents[1] / "evaluation" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)


@pytest.fixture(scope="session")
def drive_processed(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/processed/drive``: 3 DRIVE test cases + 1 training case (real images, masks)."""
    return _fixtures.build_drive_processed(mirror, tmp_path_factory.mktemp("processed") / "drive")


def _soft_prob(gt: np.ndarray, rng: np.random.Generator, miss: float) -> np.ndarray:
    """A plausible probability map: vessels high except a ``miss`` share, noisy background."""
    prob = np.where(gt, rng.uniform(0.55, 1.0, gt.shape), rng.uniform(0.0, 0.45, gt.shape))
    flip = rng.random(gt.shape) < miss
    return np.where(flip, 1.0 - prob, prob)


@pytest.fixture(scope="session")
def results(drive_processed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two seeds of one method on the fixture DRIVE set: probs, per-image CSVs, summary."""
    root = tmp_path_factory.mktemp("results")
    index = pd.read_csv(drive_processed / "index.csv", dtype=str, keep_default_na=False)
    csvs = []
    for seed, miss in ((0, 0.05), (1, 0.10)):
        run = root / "main" / "topolora_sam" / "drive" / f"seed{seed}" / "drive"
        rng = np.random.default_rng(seed)
        for row in index.query("split == 'test'").itertuples():
            gt = read_mask_png(drive_processed / row.mask)
            write_prob_png(run / "probs" / f"{row.case}.png", _soft_prob(gt, rng, miss))
        meta = {"method": "topolora_sam", "train_set": "drive", "test_set": "drive",
                "seed": str(seed)}
        write_json(run / "predictions.json",  # as the predict step records the run
                   {"run": f"runs/main/topolora_sam/drive/seed{seed}", "test_set": "drive",
                    "method": "topolora_sam", "train_set": "drive", "seed": seed,
                    "cases": sorted(index.query("split == 'test'")["case"])})
        evaluate_predictions(drive_processed, run / "probs", run, 0.5,
                             ["dice", "iou", "auc", "cldice"], meta)
        csvs.append(run / "metrics_per_image.csv")
    aggregate(csvs, root / "summary.csv", root / "metrics.json")
    return {"root": root, "summary": root / "summary.csv", "run": csvs[0].parent,
            "processed_root": drive_processed.parent}
