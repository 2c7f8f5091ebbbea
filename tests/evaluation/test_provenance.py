"""The summary says which weights each seed kept (train.select), from predictions.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from samlora.evaluation.provenance import add_selected, read_selected


def _pred(folder: Path, seed: int, epoch: int, step: str | None, score: float | None) -> Path:
    folder.mkdir(parents=True)
    (folder / "predictions.json").write_text(json.dumps({
        "run": "r", "method": "m", "train_set": "drive", "test_set": "drive", "seed": seed,
        "selected": {"by": "val_dice", "epoch": str(epoch), "step": step,
                     "score": None if score is None else repr(score)}}))
    csv = folder / "metrics_per_image.csv"
    csv.write_text("method,train_set,test_set,seed,case,dice\n")
    return csv


def test_selected_epochs_per_seed_in_seed_order(tmp_path: Path) -> None:
    csvs = [_pred(tmp_path / "s10", 10, 7, "70", 0.8), _pred(tmp_path / "s2", 2, 3, "30", 0.7),
            tmp_path / "human.csv"]  # no predictions.json beside it: no selection
    found = read_selected(csvs)
    assert sorted(found["seed"]) == ["10", "2"]
    summary = pd.DataFrame({"method": ["m", "human"], "train_set": ["drive", "-"],
                            "test_set": ["drive", "drive"], "dice_mean": [0.5, 0.6]})
    out = add_selected(summary, found).set_index("method")
    assert out.loc["m", "selected_epochs"] == "3,7"  # seed 2 before seed 10
    assert out.loc["m", "selected_steps"] == "30,70"
    assert out.loc["m", "selected_scores"] == "0.7,0.8"
    assert out.loc["m", "selected_by"] == "val_dice"
    assert out.loc["human", "selected_epochs"] == "" and out.loc["human", "selected_by"] == ""
    assert add_selected(summary, read_selected([tmp_path / "human.csv"])).equals(summary)
