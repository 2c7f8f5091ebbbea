"""data.split_variants: STARE's leave-one-out folds prepared from the mirror, and bad
variant names rejected with the key and the valid values."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from samlora.config import ConfigError, load_config
from samlora.data.download import fetch_dataset
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.split_files import SPLITS_DIR, SplitFileError

from .conftest import FOV_CFG, snapshot


def _index(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "index.csv", dtype=str, keep_default_na=False)


def _stare_ids() -> list[str]:
    """Every case id of STARE's committed split file, sorted (the leave-one-out order)."""
    splits = json.loads((SPLITS_DIR / "stare.json").read_text())["splits"]
    return sorted(c for ids in splits.values() for c in ids)


@pytest.fixture(scope="module")
def stare_root(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("stare_variants")
    return fetch_dataset("stare", base / "raw", mirror, base / "lock.json")


def test_fold_k_tests_on_the_kth_case_only(stare_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "stare"
    prepare_dataset("stare", stare_root, out, FOV_CFG,
                    policy=PreparePolicy.from_config({}, "stare"))
    default = _index(out)
    assert default["split"].value_counts().to_dict() == {"train": 10, "test": 10}
    info = json.loads((out / "dataset.json").read_text())
    assert info["split_variant"] is None and info["counts"] == {"train": 10, "test": 10}
    images = {k: v for k, v in snapshot(out).items() if k.startswith("images/")}

    cfg = {"split_variants": {"stare": "leave_one_out/3"}}
    prepare_dataset("stare", stare_root, out, FOV_CFG,
                    policy=PreparePolicy.from_config(cfg, "stare"))
    fold = _index(out)
    ids = _stare_ids()
    assert len(ids) == 20 and ids[3] == "stare_0004"
    assert fold.loc[fold["split"] == "test", "case"].tolist() == ["stare_0004"]
    assert sorted(fold.loc[fold["split"] == "train", "case"]) == [c for c in ids
                                                                   if c != "stare_0004"]
    info = json.loads((out / "dataset.json").read_text())
    assert info["split_variant"] == "leave_one_out/3"
    assert info["counts"] == {"train": 19, "test": 1} and info["num_cases"] == 20
    # only the split changed: the prepared images are the same files, untouched
    assert {k: v for k, v in snapshot(out).items() if k.startswith("images/")} == images
    # the case columns are those of the default split, row for row
    assert sorted(fold["case"]) == sorted(default["case"])
    assert set(fold.columns) == set(default.columns)


def test_last_fold_and_default_policy(stare_root: Path, tmp_path: Path) -> None:
    policy = PreparePolicy.from_config({"split_variants": {"stare": "leave_one_out/19"}},
                                       "stare")
    assert policy.split_variant == "leave_one_out/19"
    index = prepare_dataset("stare", stare_root, tmp_path / "stare", FOV_CFG, policy=policy)
    assert index.loc[index["split"] == "test", "case"].tolist() == [_stare_ids()[-1]]
    # a variant for another dataset leaves this one on its own split
    other = PreparePolicy.from_config({"split_variants": {"stare": "leave_one_out/19"}},
                                      "drive")
    assert other.split_variant is None


@pytest.mark.parametrize("variant, match", [
    ("leave_one_out/20", r"out of range \(0\.\.19\).*leave_one_out/<k>, k = 0\.\.19"),
    ("kfold/2", r"unknown split variant 'kfold/2'.*valid values: null"),
])
def test_bad_variant_fails_before_writing(stare_root: Path, tmp_path: Path, variant: str,
                                          match: str) -> None:
    with pytest.raises(SplitFileError, match=match):
        PreparePolicy.from_config({"split_variants": {"stare": variant}}, "stare")
    with pytest.raises(SplitFileError, match="stare.json"):
        prepare_dataset("stare", stare_root, tmp_path / "stare", FOV_CFG,
                        policy=PreparePolicy(split_variant=variant))
    assert not (tmp_path / "stare").exists()


def test_config_accepts_a_fold_and_rejects_bad_keys(repo_root: Path) -> None:
    params = repo_root / "params.yaml"
    assert load_config([params]).data.split_variants.stare is None  # the 10/10 default
    cfg = load_config([params], ["data.split_variants.stare=leave_one_out/3"])
    assert cfg.data.split_variants.stare == "leave_one_out/3"
    with pytest.raises(ConfigError, match=r"data\.split_variants\.stare.*out of range.*"
                                          r"valid values: null .* k = 0\.\.19"):
        load_config([params], ["data.split_variants.stare=leave_one_out/25"])
    with pytest.raises(ConfigError, match=r"data\.split_variants\.stare.*'loo/1'"):
        load_config([params], ["data.split_variants.stare=loo/1"])
    with pytest.raises(ConfigError, match=r"data\.split_variants\.stare.*does not match"):
        load_config([params], ["data.split_variants.stare=fold3"])
    with pytest.raises(ConfigError,
                       match=r"data\.split_variants\.fives.*declares no variants"):
        load_config([params], ["+data.split_variants.fives=leave_one_out/0"])
    with pytest.raises(ConfigError, match=r"data\.split_variants\.retina: unknown dataset "
                                          r"'retina'; registered datasets: .*stare"):
        load_config([params], ["+data.split_variants.retina=leave_one_out/0"])
