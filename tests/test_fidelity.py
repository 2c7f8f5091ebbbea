"""The fidelity table: one place listing every difference from each paper's code, the
switches it names, and studies that train a method as its paper's code does."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.fidelity import (
    DIFFERENCES,
    PAPERS,
    SECTIONS,
    SEGLAB_GEOMETRY,
    STATUSES,
    markdown_table,
    reference_overrides,
)
from samlora.study.studies import StudyError, expand


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


def test_every_row_is_complete_and_the_readme_shows_the_table(repo_root: Path) -> None:
    assert {d.paper for d in DIFFERENCES} == set(PAPERS)
    for d in DIFFERENCES:
        assert d.status in STATUSES, d.name
        assert d.name and d.text and d.code and d.corrected, d.name
        if d.status in ("switch", "choice"):
            keys = [k.strip() for k in d.switch.split(",")]
            assert all(k.split(".")[0] in (*SECTIONS, "methods") for k in keys), d.name
        if d.status == "data":
            assert d.switch.startswith("data.") and d.reference is not None, d.name
    assert not [d.name for d in DIFFERENCES if d.status == "open"]  # every row is settled
    readme = (repo_root / "README.md").read_text()
    assert markdown_table() in readme, "README's fidelity table is stale: paste " \
        "`python -m samlora fidelity --markdown`"


def test_reference_runs_carry_every_reference_value(cfg) -> None:
    studies = expand(cfg, ["fidelity", "fidelity_sam2lora"])
    topo = {r.method: r for r in studies["fidelity"].runs if r.seed == 0}
    assert sorted(topo) == ["topolora_sam", "topolora_sam-ref"]
    ref, ours = topo["topolora_sam-ref"], topo["topolora_sam"]
    overrides = reference_overrides("TopoLoRA-SAM", "sam_vit_b", "sam")
    assert overrides == {"loss.cldice_form": "seglab", "loss.dice_smooth": 1e-6,
                         "adapter.init": "default", "adapter.variant": "code",
                         "train.weight_decay": 1e-4, "train.schedule": "cosine_epoch",
                         "train.precision": "amp",
                         "train.augment": {"pipeline": "topolora_ref", "crop": None},
                         "geometry": SEGLAB_GEOMETRY}
    assert ref.method_cfg["loss"]["cldice_form"] == "seglab"
    assert ref.method_cfg["adapter"] == {**ours.method_cfg["adapter"], "init": "default",
                                         "variant": "code"}
    assert (ref.train["weight_decay"], ref.train["schedule"]) == (1e-4, "cosine_epoch")
    assert ref.train["precision"] == "amp" and ours.train["precision"] == "fp32"
    assert ref.train["augment"] == {"pipeline": "topolora_ref", "crop": None}
    assert ref.method_cfg["geometry"] == SEGLAB_GEOMETRY and "geometry" not in ours.method_cfg
    assert (ref.train["batch_size"], ref.train["grad_accum"]) == (1, 4)  # SAM: as Seglab
    assert ours.train["weight_decay"] == cfg.train.weight_decay  # corrected: params.yaml's
    assert ref.config_hash != ours.config_hash
    sam = {r.method: r for r in studies["fidelity_sam2lora"].runs if r.seed == 0}
    s_ref = sam["sam2lora-ref"].method_cfg
    assert s_ref["multimask"] == "first" and s_ref["lora"]["init"] == "gaussian_sqrt_r"
    assert s_ref["lora"]["dropout"] == 0.1
    assert sam["sam2lora-ref"].train["augment"] == {"pipeline": "sam2lora_ref"}
    assert sam["sam2lora-ref"].train["precision"] == "amp"
    # the backbone and rank are a stated choice: the fidelity study keeps one model size
    assert sam["sam2lora-ref"].backbone == sam["sam2lora"].backbone
    assert s_ref["lora"]["r"] == sam["sam2lora"].method_cfg["lora"]["r"]
    assert (s_ref["prompts"]["replacement"], s_ref["prompts"]["erode"],
            s_ref["prompts"]["sampling"], s_ref["prompts"]["negatives"]) == (
        True, "square2", "density", False)


def test_baselines_get_their_own_reference_values(cfg) -> None:
    """Batch 4 without accumulation, the dataset's input size, SegFormer's ADE weights and
    Mask2Former's noisy-OR; none of it reaches the SAM methods."""
    study = OmegaConf.merge(cfg, {"studies": {"b": {
        "paper": "TopoLoRA-SAM", "fidelity": "reference",
        "methods": ["unet_r34", "segformer_b0", "mask2former_swin_t"],
        "protocols": [{"train": "drive", "test": ["drive"]},
                      {"train": "kvasir_seg", "test": ["kvasir_seg"]}]}}})
    runs = {(r.method, r.train_name): r for r in expand(study, ["b"])["b"].runs if r.seed == 0}
    unet = runs[("unet_r34-ref", "drive")]
    assert (unet.train["batch_size"], unet.train["grad_accum"]) == (4, 1)
    assert unet.backbone_cfg["img_size"] == 384
    assert runs[("unet_r34-ref", "kvasir_seg")].backbone_cfg["img_size"] == 512
    assert runs[("segformer_b0-ref", "drive")].backbone == "segformer_b0_ade"
    assert runs[("mask2former_swin_t-ref", "drive")].backbone == "mask2former_swin_t_noisy_or"
    assert cfg.backbones.segformer_b0_ade.pretrained == \
        "nvidia/segformer-b0-finetuned-ade-512-512"
    assert cfg.backbones.mask2former_swin_t_noisy_or.reduction == "noisy_or"
    sam = reference_overrides("TopoLoRA-SAM", "sam_vit_b", "sam")
    assert "backbone" not in sam and "train.batch_size" not in sam


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
