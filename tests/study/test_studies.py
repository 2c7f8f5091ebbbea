"""The study layer: sweeps, unions, targets, per-method train settings and shared runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from samlora.config import ConfigError, load_config
from samlora.study.runspec import from_config
from samlora.study.studies import StudyError, all_runs, expand, single_run


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


def _with(cfg, **studies):
    out = OmegaConf.merge(cfg, {"studies": studies})
    OmegaConf.set_struct(out, False)
    return out


def test_sweeps_derive_names_and_apply_every_zipped_value(cfg) -> None:
    study = expand(cfg, ["topolora_rank"])["topolora_rank"]
    by_method = {r.method: r for r in study.runs if r.seed == 0}
    # r=8 and r=16 are params.yaml methods of their own: those names, not derived ones
    assert sorted(by_method) == ["topolora_sam", "topolora_sam-r32-alpha64",
                                 "topolora_sam-r4-alpha8", "topolora_sam_r16"]
    assert by_method["topolora_sam-r4-alpha8"].method_cfg["lora"] == {
        **cfg.methods.topolora_sam.lora, "r": 4, "alpha": 8}
    assert by_method["topolora_sam"].method_cfg["lora"]["r"] == 8  # r=8 is the plain method


def test_a_run_shared_by_studies_is_one_spec(cfg) -> None:
    studies = expand(cfg)
    ids = {name: {r.name for r in s.runs} for name, s in studies.items()}
    shared = "topolora_sam__drive__seed0"
    assert {n for n, runs in ids.items() if shared in runs} == {
        "topolora_benchmark", "topolora_components", "topolora_transfer", "topolora_rank",
        "topolora_cldice_weight", "head_to_head", "fidelity"}
    specs = {id(r) for s in studies.values() for r in s.runs if r.name == shared}
    assert len({r for s in studies.values() for r in s.runs if r.name == shared}) == 1
    assert len(specs) >= 1


def test_unions_targets_and_method_train_settings(cfg) -> None:
    cfg = _with(cfg, u={"methods": ["sam2lora"], "seeds": [1], "protocols": [
        {"train": ["stare", "drive"], "name": "two", "target": "vessel",
         "sampling": "balanced", "test": ["drive"]}]})
    cfg.methods.sam2lora.train = {"batch_size": 2, "grad_accum": 4, "weight_decay": 3e-4}
    (run,) = expand(cfg, ["u"])["u"].runs
    assert run.train_sets == ("drive", "stare") and run.train_name == "two"
    assert run.target == "vessel" and run.sampling == "balanced"
    assert run.name == "sam2lora__two__seed1"  # vessel is both sets' primary label
    assert (run.train["batch_size"], run.train["grad_accum"]) == (2, 4)
    assert run.train["epochs"] == cfg.train.epochs  # the rest from the global block
    assert "train" not in run.method_cfg
    assert from_config(run.config()) == run  # config.yaml gives back the same run


def test_a_target_other_than_the_primary_label_is_in_the_name(cfg) -> None:
    cup = expand(cfg, ["sam2lora_cup"])["sam2lora_cup"].runs[0]
    disc = expand(cfg, ["sam2lora_disc"])["sam2lora_disc"].runs[0]
    assert cup.target == "cup" and cup.name.endswith("__disc_union__cup__seed0")
    assert disc.name == "sam2lora_zero_shot__disc_union__seed0"
    assert cup.config_hash != disc.config_hash


def test_one_name_for_two_configs_is_an_error(cfg) -> None:
    cfg = _with(cfg, a={"methods": [{"base": "topolora_sam", "sweep": {"loss.cldice": [0.1]}}],
                        "protocols": [{"train": "drive", "test": ["drive"]}]},
                b={"methods": [{"base": "topolora_sam", "sweep": {"loss.cldice": [0.1]}}],
                   "protocols": [{"train": "drive", "test": ["drive"]}]})
    assert len(all_runs(expand(cfg, ["a", "b"]))) == 1  # the same config: shared
    cfg.methods.topolora_sam.lora.r = 4
    clash = _with(load_config([Path(__file__).parents[2] / "params.yaml"]),
                  a=cfg.studies.a)
    clash.methods.topolora_sam_r16.loss.cldice = 0.1
    clash.methods.topolora_sam_r16.lora.r = 8  # now it is topolora_sam in all but name
    assert all_runs(expand(clash, ["a"]))


@pytest.mark.parametrize("entry, match", [
    ({"base": "nope", "sweep": {"lora.r": [4]}}, "unknown method"),
    ({"base": "topolora_sam", "sweep": {"lora.rr": [4]}}, "has no key 'lora.rr'"),
    ({"base": "topolora_sam", "sweep": {"lora.r": [4, 8], "lora.alpha": [8]}}, "one length"),
])
def test_bad_sweeps_name_the_key(cfg, entry: dict, match: str) -> None:
    bad = _with(cfg, s={"methods": [entry], "protocols": [{"train": "drive", "test": ["drive"]}]})
    with pytest.raises(StudyError, match=match):
        expand(bad, ["s"])


def test_a_union_needs_a_name_and_studies_are_checked_on_load(cfg, repo_root: Path) -> None:
    bad = _with(cfg, s={"methods": ["topolora_sam"],
                        "protocols": [{"train": ["drive", "stare"], "test": ["drive"]}]})
    with pytest.raises(StudyError, match="needs a name"):
        expand(bad, ["s"])
    with pytest.raises(ConfigError, match="uses dataset 'nosuch'|unknown|not in data.datasets"):
        load_config([repo_root / "params.yaml"],
                    ["studies.head_to_head.protocols=[{train: drive, test: [hrf2]}]"])


def test_single_run_is_the_study_run_of_the_same_settings(cfg) -> None:
    study_run = next(r for r in expand(cfg, ["topolora_components"])["topolora_components"].runs
                     if r.method == "decoder_only" and r.seed == 1)
    assert single_run(cfg, "decoder_only", "drive", 1) == study_run


def test_plan_refuses_studies_on_datasets_not_prepared(repo_root: Path) -> None:
    from samlora.cli import main

    args = ["plan", "--params", str(repo_root / "params.yaml"), "--study", "topolora_rank"]
    assert main(args) == 0
    assert main([*args, "data.datasets=[stare]"]) == 2


def test_canonical_refuses_one_name_for_two_configs(cfg) -> None:
    """The guard itself: two specs named alike whose configs differ."""
    from dataclasses import replace

    from samlora.study.studies import canonical

    spec = single_run(cfg, "topolora_sam", "drive", 0)
    other = replace(spec, train_json=spec.train_json.replace('"epochs":50', '"epochs":7'))
    assert other.name == spec.name and other.config_hash != spec.config_hash
    with pytest.raises(StudyError, match="two different configs"):
        canonical([spec, other])
    assert list(canonical([spec, spec])) == [spec.name]  # the same run twice is one


def test_a_study_reports_ours_and_its_paper_s_evaluation_modes(cfg) -> None:
    studies = expand(cfg)
    by_paper = {s.paper: s.modes for s in studies.values()}
    assert by_paper["TopoLoRA-SAM"] == ("native_fov", "topolora_ref")
    assert by_paper["SAM2LoRA"] == ("native_fov", "sam2lora_ref")
    assert by_paper["samlora"] == ("native_fov", "topolora_ref", "sam2lora_ref")
    picked = _with(cfg, only={**OmegaConf.to_container(cfg.studies.topolora_benchmark),
                              "modes": ["sam2lora_ref"]})
    assert expand(picked, ["only"])["only"].modes == ("sam2lora_ref",)
    narrow = OmegaConf.merge(picked, {"evaluate": {"modes": ["native_fov"]}})
    with pytest.raises(StudyError, match=r"studies\.only\.modes.*add \['sam2lora_ref'\]"):
        expand(narrow, ["only"])
    # a study defaults to what evaluate.modes computes
    assert expand(narrow, ["topolora_benchmark"])["topolora_benchmark"].modes == ("native_fov",)
