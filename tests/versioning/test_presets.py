"""A params edit that an active preset would override is refused, naming where to edit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from samlora.config import ConfigError, load_config, param_files
from samlora.versioning import presets

ROOT = Path(__file__).resolve().parents[2]


def test_leaves_treat_lists_as_values() -> None:
    tree = {"train": {"lr": 1e-3, "augment": {"flip": True}}, "studies": {"enabled": ["a"]}}
    assert presets.leaves(tree) == {"train.lr": 1e-3, "train.augment.flip": True,
                                    "studies.enabled": ["a"]}


def test_edited_keys_include_added_and_removed() -> None:
    old = {"train": {"lr": 1e-3, "epochs": 5}, "a": {"b": 1}}
    new = {"train": {"lr": 1e-5, "epochs": 5}, "c": None}
    assert presets.edited_keys(old, new) == {"train.lr", "a.b", "c"}


@pytest.mark.parametrize("edited,preset,hit", [
    ({"train.lr"}, {"train": {"lr": 3e-3}}, ["train.lr"]),
    ({"train.lr"}, {"train": {"epochs": 1}}, []),
    ({"methods.m.lora.r"}, {"methods": {"m": {"lora": None}}}, ["methods.m.lora.r"]),
    ({"methods.m"}, {"methods": {"m": {"lora": {"r": 4}}}}, ["methods.m"]),
    ({"train.lr_warmup"}, {"train": {"lr": 1}}, []),  # a prefix of the name, not the path
])
def test_shadowed_finds_the_same_parent_and_child_keys(edited, preset, hit) -> None:
    assert presets.shadowed(edited, preset) == hit


def _git_repo(tmp_path: Path) -> Path:
    (tmp_path / "presets").mkdir()
    text = (ROOT / "params.yaml").read_text().replace("\npreset: []\n",
                                                      "\npreset: [presets/demo.yaml]\n", 1)
    (tmp_path / "params.yaml").write_text(text)
    (tmp_path / "presets/demo.yaml").write_text((ROOT / "presets/demo.yaml").read_text())
    for cmd in (["init", "-q"], ["add", "-A"],
                ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *cmd], cwd=tmp_path, check=True)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_an_edit_the_preset_overrides_is_refused(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    presets.check(repo)  # unedited: fine
    # exactly what `dvc exp run -S train.lr=1e-5` writes
    _edit(repo / "params.yaml", "\n  lr: 1.0e-4", "\n  lr: 1e-05")
    with pytest.raises(ConfigError, match=r"params.yaml: train.lr edited, but the active "
                       r"preset presets/demo.yaml sets it.*-S presets/demo.yaml:train.lr="):
        presets.check(repo)


def test_an_edit_the_preset_leaves_alone_passes(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    _edit(repo / "params.yaml", "\n  weight_decay: ", "\n  weight_decay: 0.5  # ")
    presets.check(repo)


def test_an_edit_of_the_preset_itself_passes_and_is_read_as_a_float(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    _edit(repo / "presets/demo.yaml", "\n  lr: 3.0e-3", "\n  lr: 1e-05")
    presets.check(repo)
    cfg = load_config([repo / "params.yaml"])
    assert cfg.train.lr == 1e-05 and isinstance(cfg.train.lr, float)


def test_the_preset_key_is_expanded_once_and_in_order(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    files = param_files([repo / "params.yaml", repo / "presets/demo.yaml"])
    assert files == [repo / "params.yaml", repo / "presets/demo.yaml"]
    (repo / "presets/demo.yaml").write_text("preset: presets/other.yaml\n")
    with pytest.raises(ConfigError, match="presets/demo.yaml: a preset cannot name presets"):
        load_config([repo / "params.yaml"])


def test_a_bad_preset_value_names_the_key(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    _edit(repo / "params.yaml", "\npreset: [presets/demo.yaml]\n", "\npreset: 3\n")
    with pytest.raises(ConfigError, match="params.yaml: preset: 3"):
        param_files([repo / "params.yaml"])
