"""The fidelity table: one place listing every difference from each paper's code, the
switches it names, and studies that train a method as its paper's code does."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.fidelity import DIFFERENCES, PAPERS, markdown_table, reference_overrides
from samlora.study.studies import StudyError, expand


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


def test_every_row_is_complete_and_the_readme_shows_the_table(repo_root: Path) -> None:
    assert {d.paper for d in DIFFERENCES} == set(PAPERS)
    for d in DIFFERENCES:
        assert d.status in ("switch", "evaluation", "documented", "open"), d.name
        assert d.name and d.text and d.code and d.corrected, d.name
        if d.status == "switch":
            assert d.switch.split(".")[0] in ("loss", "adapter", "train", "lora", "prompts",
                                              "multimask", "methods"), d.name
    readme = (repo_root / "README.md").read_text()
    assert markdown_table() in readme, "README's fidelity table is stale: paste " \
        "`python -m samlora fidelity --markdown`"


def test_reference_runs_carry_every_reference_value(cfg) -> None:
    studies = expand(cfg, ["fidelity", "fidelity_sam2lora"])
    topo = {r.method: r for r in studies["fidelity"].runs if r.seed == 0}
    assert sorted(topo) == ["topolora_sam", "topolora_sam-ref"]
    ref, ours = topo["topolora_sam-ref"], topo["topolora_sam"]
    overrides = reference_overrides("TopoLoRA-SAM")
    assert overrides == {"loss.cldice_form": "seglab", "loss.dice_smooth": 1e-6,
                         "adapter.init": "default", "adapter.variant": "code",
                         "train.weight_decay": 1e-4, "train.schedule": "cosine_epoch",
                         "train.augment": {"pipeline": "topolora_ref", "crop": 384}}
    assert ref.method_cfg["loss"]["cldice_form"] == "seglab"
    assert ref.method_cfg["adapter"] == {**ours.method_cfg["adapter"], "init": "default",
                                         "variant": "code"}
    assert (ref.train["weight_decay"], ref.train["schedule"]) == (1e-4, "cosine_epoch")
    assert ref.train["augment"] == {"pipeline": "topolora_ref", "crop": 384}
    assert ours.train["weight_decay"] == cfg.train.weight_decay  # corrected: params.yaml's
    assert ref.config_hash != ours.config_hash
    sam = {r.method: r for r in studies["fidelity_sam2lora"].runs if r.seed == 0}
    s_ref = sam["sam2lora-ref"].method_cfg
    assert s_ref["multimask"] == "first" and s_ref["lora"]["init"] == "gaussian_sqrt_r"
    assert s_ref["lora"]["dropout"] == 0.1
    assert sam["sam2lora-ref"].train["augment"] == {"pipeline": "sam2lora_ref"}
    assert (s_ref["prompts"]["replacement"], s_ref["prompts"]["erode"],
            s_ref["prompts"]["sampling"], s_ref["prompts"]["negatives"]) == (
        True, "square2", "density", False)


def test_a_reference_entry_needs_its_paper(cfg) -> None:
    bad = OmegaConf.merge(cfg, {"studies": {"x": {
        "paper": "samlora", "methods": [{"base": "topolora_sam", "fidelity": "reference"}],
        "protocols": [{"train": "drive", "test": ["drive"]}]}}})
    with pytest.raises(StudyError, match=r"studies\.x\.methods\[0\].*set 'paper'"):
        expand(bad, ["x"])
    wide = OmegaConf.merge(cfg, {"studies": {"y": {
        "paper": "TopoLoRA-SAM", "fidelity": "reference", "methods": ["decoder_only"],
        "protocols": [{"train": "drive", "test": ["drive"]}]}}})
    run = expand(wide, ["y"])["y"].runs[0]  # a study-wide default; no adapter: skipped
    assert run.method == "decoder_only-ref" and run.method_cfg["adapter"] is None
    assert run.method_cfg["loss"]["cldice_form"] == "seglab"


def test_the_cli_prints_the_table(capsys) -> None:
    from samlora.cli import main

    assert main(["fidelity", "--paper", "SAM2LoRA"]) in (0, None)
    out = capsys.readouterr().out
    assert "LoRA A initialisation" in out and "clDice soft skeleton" not in out


@pytest.fixture(scope="module")
def drive_processed_val(mirror, tmp_path_factory):
    from tests.evaluation.conftest import VAL_TRAIN_CASES, build_drive_processed

    return build_drive_processed(mirror, tmp_path_factory.mktemp("processed") / "drive",
                                 VAL_TRAIN_CASES)


def test_reference_runs_of_both_papers_train(cfg, drive_processed_val, tmp_path) -> None:
    """Every reference switch reaches a real (tiny) training run of each paper's method."""
    from safetensors import safe_open

    from samlora.training.loop import train_spec

    small = OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(drive_processed_val.parent)},
        "backbones": {"sam_tiny": {"img_size": 64}, "sam2_tiny": {"img_size": 128}},
        "methods": {"topolora_sam": {"backbone": "sam_tiny", "adapter": {"hidden": 8}},
                    "sam2lora": {"backbone": "sam2_tiny",
                                 "prompts": {"train_points": 20, "eval_modes": ["none"]}}},
        "train": {"epochs": 2, "batch_size": 1, "grad_accum": 1, "num_workers": 0,
                  "device": "cpu"},
        "studies": {"both": {
            "paper": "samlora", "seeds": [0],
            "methods": [{"base": "topolora_sam", "fidelity": "reference",
                         "paper": "TopoLoRA-SAM"},
                        {"base": "sam2lora", "fidelity": "reference", "paper": "SAM2LoRA"}],
            "protocols": [{"train": "drive", "test": ["drive"]}]}}})
    runs = {r.method: r for r in expand(small, ["both"])["both"].runs}
    assert sorted(runs) == ["sam2lora-ref", "topolora_sam-ref"]
    for name, spec in runs.items():
        row = train_spec(spec, tmp_path / name, tmp_path / "models")
        assert row["epoch"] == 2, name
        with safe_open(str(tmp_path / name / "adapter.safetensors"), framework="pt") as f:
            assert f.metadata()["run_hash"], name
    import yaml

    topo = yaml.safe_load((tmp_path / "topolora_sam-ref" / "config.yaml").read_text())
    assert topo["train"]["schedule"] == "cosine_epoch"
    assert topo["method_cfg"]["adapter"]["init"] == "default"
    sam = yaml.safe_load((tmp_path / "sam2lora-ref" / "config.yaml").read_text())
    assert sam["method_cfg"]["multimask"] == "first"
