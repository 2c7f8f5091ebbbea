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


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_carry_the_umasks_mode(tmp_path: Path, umask: int) -> None:
    """mkstemp creates 0600; outputs must be as readable as any file the lab creates."""
    import os
    import stat

    from samlora.utils.io import atomic_path, make_temp_dir, write_json

    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_prob_png(tmp_path / "p.png", np.zeros((4, 4), np.float32))
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"1")
        folder = make_temp_dir(tmp_path, ".t-")
        expected_dir = 0o777 & ~umask
        (tmp_path / "plain.txt").write_text("reference written by open()")
    finally:
        os.umask(old)
    reference = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert reference == 0o666 & ~umask
    for name in ("a.json", "p.png", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == reference, name
    assert stat.S_IMODE(folder.stat().st_mode) == expected_dir


def test_safetensors_weights_carry_the_umasks_mode(tmp_path: Path) -> None:
    """safetensors writes its own 0600 temporary file and renames it onto the target."""
    import os
    import stat

    import torch

    from samlora.training.state import save_weights

    old = os.umask(0o022)
    try:
        save_weights(tmp_path / "adapter.safetensors", {"w": torch.zeros(2)}, {"format": "x"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "adapter.safetensors").stat().st_mode) == 0o644
