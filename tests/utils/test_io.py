"""Atomic file helpers: merged JSON results, 16-bit probability PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samlora.utils.io import read_prob_png, update_json, write_prob_png


def test_update_json_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "bench" / "results.json"
    update_json(path, {"train_step": [1], "machine": {"cpus": 2}})
    merged = update_json(path, {"prepare": {"drive": 3.5}, "machine": {"cpus": 4}})
    assert merged == {"train_step": [1], "prepare": {"drive": 3.5}, "machine": {"cpus": 4}}
    assert json.loads(path.read_text()) == merged
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left


def test_update_json_refuses_a_non_object(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="results.json: expected a JSON object"):
        update_json(path, {"a": 1})
    assert path.read_text() == "[1, 2]\n"


def test_prob_png_round_trip_within_one_level(tmp_path: Path) -> None:
    prob = np.linspace(0.0, 1.0, 12 * 7, dtype=np.float32).reshape(12, 7)
    write_prob_png(tmp_path / "p.png", prob)
    back = read_prob_png(tmp_path / "p.png")
    assert back.shape == prob.shape
    assert np.abs(back - prob).max() <= 0.5 / 65535 + 1e-7
