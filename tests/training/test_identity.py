"""The run hash: what changes the weights changes it, what provably cannot does not."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from samlora.config import load_config
from samlora.training.identity import data_digest, run_hash, weight_defining
from samlora.training.loop import run_config


@pytest.fixture(scope="module")
def rc(repo_root: Path) -> dict:
    cfg = load_config([repo_root / "params.yaml"])
    return run_config(cfg, "sam2lora", "drive", 0)


def _edited(rc: dict, *path_value: tuple[tuple[str, ...], object]) -> dict:
    out = copy.deepcopy(rc)
    for path, value in path_value:
        node = out
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return out


@pytest.mark.parametrize("path, value", [
    (("train", "lr"), 1e-5),
    (("train", "epochs"), 51),
    (("train", "augment"), None),
    (("train", "batch_size"), 3),
    (("seed",), 1),
    (("method_cfg", "lora", "r"), 16),
    (("method_cfg", "prompts", "train_points"), 10),
    (("backbone_cfg", "img_size"), 512),
    (("data", "processed_dir"), "elsewhere"),
])
def test_weight_defining_settings_change_the_hash(rc: dict, path: tuple, value: object) -> None:
    assert run_hash(_edited(rc, (path, value)), "d") != run_hash(rc, "d")


@pytest.mark.parametrize("path, value", [
    (("train", "log_every"), 1),
    (("train", "num_workers"), 7),
    (("method_cfg", "prompts", "eval_modes"), ["none"]),
    (("method_cfg", "prompts", "eval_seed"), 3),
    (("run_hash",), "an older hash"),
])
def test_settings_that_cannot_change_the_weights_keep_it(rc: dict, path: tuple,
                                                         value: object) -> None:
    assert run_hash(_edited(rc, (path, value)), "d") == run_hash(rc, "d")
    assert "log_every" not in weight_defining(rc)["train"]


def test_the_training_data_is_part_of_the_identity(rc: dict, tmp_path: Path) -> None:
    (tmp_path / "index.csv").write_text("case,split\na,train\n")
    first = data_digest(tmp_path)
    (tmp_path / "dataset.json").write_text('{"reference": "union"}\n')
    second = data_digest(tmp_path)
    assert first != second and run_hash(rc, first) != run_hash(rc, second)
    assert data_digest(tmp_path) == second
