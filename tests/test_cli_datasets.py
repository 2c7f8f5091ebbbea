"""`python -m samlora datasets` and `split`, and registry ids checked at config load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samlora.cli import main
from samlora.config import ConfigError, load_config
from samlora.data.registry import dataset_ids


def _args(repo_root: Path, tmp_path: Path, mirror: Path) -> list[str]:
    return ["--params", str(repo_root / "params.yaml"), f"data.mirror={mirror}",
            f"data.raw_dir={tmp_path / 'raw'}", f"data.processed_dir={tmp_path / 'processed'}"]


def test_datasets_table(repo_root: Path, tmp_path: Path, mirror: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", *_args(repo_root, tmp_path, mirror)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == set(dataset_ids())
    assert lines["stare"].split()[3:7] == ["first10_last10", "10", "0", "10"]
    assert "yes" in lines["stare"] and "700×605" in lines["stare"]
    assert "subset 100/1000" in lines["kvasir_seg"] and "polyp" in lines["kvasir_seg"]
    assert "999×960" in lines["chase_db1"] and "vessel,vessel_2nd_observer" in lines["chase_db1"]
    assert " no " in lines["hrf"] and "download from https://www5.cs.fau.de" in lines["hrf"]
    assert "400" in lines["refuge2"] and "registration at" in lines["refuge2"]


def test_split_draws_once_from_the_data(repo_root: Path, tmp_path: Path, mirror: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    args = _args(repo_root, tmp_path, mirror)
    cmd = ["split", "--dataset", "kvasir_seg", "--seed", "0", "--splits-dir", str(tmp_path)]
    assert main([*cmd, *args]) == 0
    written = json.loads((tmp_path / "kvasir_seg.json").read_text())
    assert len(written["splits"]["train"]) == 75 and len(written["splits"]["test"]) == 25
    assert written["seed"] == 0 and written["convention"] == "seeded_75_25"
    before = (tmp_path / "kvasir_seg.json").read_bytes()
    assert main([*cmd[:4], "1", *cmd[5:], *args]) == 2  # another seed: refused
    assert "already exists" in caplog.text
    assert (tmp_path / "kvasir_seg.json").read_bytes() == before
    assert main(["split", "--dataset", "drive", "--seed", "0", "--splits-dir", str(tmp_path),
                 *args]) == 2
    assert "committed with the package" in caplog.text


def test_unknown_dataset_in_params_is_named(repo_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.datasets names unknown dataset 'stare_x'"):
        load_config([repo_root / "params.yaml"], ["data.datasets=[drive,stare_x]"])
    every = ",".join(dataset_ids())
    cfg = load_config([repo_root / "params.yaml"], [f"data.datasets=[{every}]",
                                                     "data.resolution=1024",
                                                     "data.reference=union"])
    assert len(cfg.data.datasets) == len(dataset_ids()) == 14


@pytest.mark.parametrize(("override", "key"), [("data.resolution=big", "data.resolution"),
                                               ("data.reference=vote", "data.reference")])
def test_bad_policy_values_rejected(repo_root: Path, override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config([repo_root / "params.yaml"], [override])
