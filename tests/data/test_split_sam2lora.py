"""The ``sam2lora_random`` split variant: SAM2LoRA's sklearn random split of the sorted ids.

Known answers (sklearn puts ceil(F·n) cases in test): CHASE_DB1 28 -> 8, HRF 45 -> 13,
STARE 20 -> 5, ORIGA 650 -> 163, G1020 1020 -> 255, GRAPE 631 -> 158, PAPILA 488 -> 122.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from samlora.config import load_config
from samlora.data.download import fetch_dataset
from samlora.data.policy import PreparePolicy
from samlora.data.prepare import prepare_dataset
from samlora.data.split_files import (
    SplitFile,
    SplitFileError,
    check_variant,
    load_split,
    parse_split,
    write_seeded_split,
    write_split,
)
from samlora.data.split_variants import SAM2LORA_RANDOM, SAM2LORA_TEST_FRACTIONS

from .conftest import FOV_CFG

COMMITTED = {"chase_db1": (28, 8), "hrf": (45, 13), "stare": (20, 5), "origa": (650, 163)}
SEEDED = {"g1020": (1020, 255), "grape": (631, 158), "papila": (488, 122)}


def _sklearn_test(dataset: str, cases: list[str]) -> list[str]:
    """SAM2LoRA's call on the sorted ids, straight from sklearn."""
    return sorted(train_test_split(sorted(cases), test_size=SAM2LORA_TEST_FRACTIONS[dataset],
                                   random_state=0)[1])


def _check(split: SplitFile, n: int, n_test: int) -> None:
    assert SAM2LORA_RANDOM in split.variants and SAM2LORA_RANDOM in split.allowed_variants()
    got = split.assignment(SAM2LORA_RANDOM)
    assert len(split.cases) == n and sorted(got) == sorted(split.cases)  # train ∪ test = all
    assert set(got.values()) == {"train", "test"}  # one split per case: disjoint
    test = sorted(c for c, s in got.items() if s == "test")
    assert len(test) == n_test and len(got) - len(test) == n - n_test
    assert test == _sklearn_test(split.dataset, split.cases)
    check_variant(split.dataset, SAM2LORA_RANDOM)


def test_the_table_covers_sam2lora_datasets() -> None:
    assert set(SAM2LORA_TEST_FRACTIONS) == set(COMMITTED) | set(SEEDED)
    assert {k: v for k, v in SAM2LORA_TEST_FRACTIONS.items() if v != 0.25} == {
        "chase_db1": 0.27, "hrf": 0.27}


@pytest.mark.parametrize("dataset", sorted(COMMITTED))
def test_committed_files_declare_it_with_known_counts(dataset: str) -> None:
    _check(load_split(dataset), *COMMITTED[dataset])


@pytest.mark.parametrize("dataset", sorted(SEEDED))
def test_seeded_files_declare_it_with_known_counts(dataset: str, splits_dir: Path) -> None:
    n, n_test = SEEDED[dataset]
    write_seeded_split(dataset, [f"{dataset}_{i:04d}" for i in range(n)], seed=0,
                       splits_dir=splits_dir)
    split = load_split(dataset)
    assert f"{n - n_test} train / {n_test} test" in split.variants[SAM2LORA_RANDOM]
    _check(split, n, n_test)


def test_pools_every_split_and_ignores_listing_order(tmp_path: Path) -> None:
    ids = [f"stare_{i:04d}" for i in range(20)]
    variants = {SAM2LORA_RANDOM: "SAM2LoRA's split"}
    a, b = tmp_path / "a" / "stare.json", tmp_path / "b" / "stare.json"
    a.parent.mkdir(), b.parent.mkdir()
    write_split(SplitFile("stare", "x", "x", {"train": tuple(ids[:8]), "val": tuple(ids[8:12]),
                                              "test": tuple(ids[12:])}, variants=variants), a)
    write_split(SplitFile("stare", "x", "x", {"train": tuple(reversed(ids[5:])),
                                              "test": tuple(ids[:5])}, variants=variants), b)
    got = parse_split(a).assignment(SAM2LORA_RANDOM)
    assert got == parse_split(b).assignment(SAM2LORA_RANDOM)  # whatever the file's split
    assert sorted(got) == ids and sorted(c for c, s in got.items() if s == "test") == \
        _sklearn_test("stare", ids)


def test_a_dataset_sam2lora_did_not_split_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "drive.json"
    path.write_text(json.dumps({
        "dataset": "drive", "convention": "x", "description": "x",
        "splits": {"train": ["drive_21", "drive_22"], "test": ["drive_01"]},
        "variants": {SAM2LORA_RANDOM: "SAM2LoRA's split"}}))
    with pytest.raises(SplitFileError) as err:
        parse_split(path)
    msg = str(err.value)
    assert str(path) in msg and SAM2LORA_RANDOM in msg and "'drive'" in msg
    assert "\n" not in msg
    # no file outside the table declares it, and a seeded file there does not either
    with pytest.raises(SplitFileError, match=r"drive\.json: unknown split variant"):
        load_split("drive").assignment(SAM2LORA_RANDOM)
    write_seeded_split("kvasir_seg", [f"kvasir_seg_{i}" for i in range(8)], seed=0,
                       splits_dir=tmp_path)
    assert load_split("kvasir_seg", splits_dir=tmp_path).variants == {}


@pytest.mark.parametrize("variant", ["sam2lora_random/1", "sam2lora"])
def test_malformed_names_are_refused(variant: str) -> None:
    with pytest.raises(SplitFileError, match=r"stare\.json: unknown split variant.*valid "
                                             r"values: null .* or sam2lora_random"):
        check_variant("stare", variant)


def test_policy_takes_it_from_split_variants() -> None:
    policy = PreparePolicy.from_config({"split_variants": {"chase_db1": SAM2LORA_RANDOM}},
                                       "chase_db1")
    assert policy.split_variant == SAM2LORA_RANDOM and policy.info()["split_variant"] == \
        SAM2LORA_RANDOM
    with pytest.raises(SplitFileError, match=r"fives\.json: unknown split variant"):
        PreparePolicy.from_config({"split_variants": {"fives": SAM2LORA_RANDOM}}, "fives")


def test_config_accepts_it(repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"], [f"data.split_variants.stare={SAM2LORA_RANDOM}"])
    assert cfg.data.split_variants.stare == SAM2LORA_RANDOM


def test_stare_prepared_from_the_mirror(mirror: Path, tmp_path: Path) -> None:
    root = fetch_dataset("stare", tmp_path / "raw", mirror, tmp_path / "lock.json")
    out = tmp_path / "stare"
    policy = PreparePolicy.from_config({"split_variants": {"stare": SAM2LORA_RANDOM}}, "stare")
    prepare_dataset("stare", root, out, FOV_CFG, policy=policy)
    index = pd.read_csv(out / "index.csv", dtype=str, keep_default_na=False)
    cases = load_split("stare").cases
    test = sorted(index.loc[index["split"] == "test", "case"])
    assert len(test) == 5 and test == _sklearn_test("stare", cases)
    assert sorted(index["case"]) == sorted(cases)
    info = json.loads((out / "dataset.json").read_text())
    assert info["split_variant"] == SAM2LORA_RANDOM
    assert info["counts"] == {"train": 15, "test": 5} and info["num_cases"] == 20
