"""The weights manifest: written with the trainable tensors, checked against the model."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from samlora.config import load_config
from samlora.evaluation.predict import load_run
from samlora.models.registry import build_model
from samlora.models.segmenter import trainable_state_dict
from samlora.training.manifest import FORMAT, ManifestError, build_manifest, check_manifest
from samlora.training.state import WEIGHTS, frozen_fingerprint, load_weights, save_weights

TINY = {"family": "sam", "arch": "tiny", "img_size": 64, "checkpoint": None}
CKPT = {"file": "sam_vit_b_01ec64.pth", "url": "https://example.invalid/sam.pth",
        "bytes": 1, "sha256": "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"}
METHOD = {"backbone": "sam_tiny",
          "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targets": "encoder_ffn"},
          "adapter": {"hidden": 16}, "decoder": "train",
          "loss": {"bce": 1.0, "dice": 1.0, "cldice": 0.0, "cldice_iters": 10}}


def _rc(method_cfg: dict, backbone_cfg: dict = TINY, method: str = "topolora_sam") -> dict:
    return {"method": method, "train_set": "drive", "seed": 0, "backbone": "sam_tiny",
            "method_cfg": copy.deepcopy(method_cfg), "backbone_cfg": dict(backbone_cfg)}


def _model(rc: dict) -> torch.nn.Module:
    torch.manual_seed(rc["seed"])
    return build_model(rc["method_cfg"], rc["backbone_cfg"])


def _saved(tmp_path: Path, rc: dict) -> tuple[dict, dict]:
    model = _model(rc)
    manifest = build_manifest(model, rc, frozen_fingerprint(model), epochs=3)
    save_weights(tmp_path / WEIGHTS, trainable_state_dict(model), manifest)
    return load_weights(tmp_path / WEIGHTS)


def test_manifest_records_base_method_peft_and_trainable_names(tmp_path: Path) -> None:
    rc = _rc(METHOD, {**TINY, "checkpoint": CKPT})
    model = build_model(rc["method_cfg"], rc["backbone_cfg"], pretrained=False)
    manifest = build_manifest(model, rc, frozen_fingerprint(model), epochs=3)
    assert manifest["format"] == FORMAT
    assert json.loads(manifest["base_weights"]) == {"file": CKPT["file"], "sha256": CKPT["sha256"]}
    assert json.loads(manifest["method_cfg"])["lora"]["r"] == 4
    (peft,) = json.loads(manifest["peft_config"]).values()
    assert (peft["r"], peft["lora_alpha"]) == (4, 8.0)
    assert "mlp" in peft["target_modules"]
    names = json.loads(manifest["trainable_names"])
    assert names == sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert any(".lora_A." in n for n in names) and any(n.startswith("adapter.") for n in names)
    assert int(manifest["trainable"]) == sum(p.numel() for p in model.parameters()
                                             if p.requires_grad)
    assert json.loads(build_manifest(model, _rc(METHOD), "x", 0)["base_weights"]) == "random"


def test_matching_weights_pass_and_mismatches_are_named(tmp_path: Path) -> None:
    rc = _rc(METHOD)
    tensors, manifest = _saved(tmp_path, rc)
    model = _model(rc)
    check_manifest(manifest, model, rc, frozen_fingerprint(model), tmp_path / WEIGHTS)

    r8 = _rc({**METHOD, "lora": {**METHOD["lora"], "r": 8}})
    with pytest.raises(ManifestError, match=r"adapter.safetensors.*lora\.r: 4 in the weights, "
                                            r"8 in the model.*LoRA config"):
        model = _model(r8)
        check_manifest(manifest, model, r8, frozen_fingerprint(model), tmp_path / WEIGHTS)

    other = _rc(METHOD, method="lora_only")
    with pytest.raises(ManifestError, match="method 'topolora_sam' in the weights, 'lora_only'"):
        model = _model(other)
        check_manifest(manifest, model, other, frozen_fingerprint(model), tmp_path / WEIGHTS)

    ckpt = _rc(METHOD, {**TINY, "checkpoint": CKPT})
    with pytest.raises(ManifestError, match="base checkpoint"):
        model = _model(rc)  # same random base; only the recorded checkpoint differs
        check_manifest(manifest, model, ckpt, frozen_fingerprint(model), tmp_path / WEIGHTS)

    reseeded = {**rc, "seed": 1}
    with pytest.raises(ManifestError, match="frozen base weights differ"):
        model = _model(reseeded)
        check_manifest(manifest, model, reseeded, frozen_fingerprint(model), tmp_path / WEIGHTS)

    with pytest.raises(ManifestError, match="no samlora manifest"):
        check_manifest({"method": "x"}, model, rc, "", tmp_path / WEIGHTS)


def test_load_run_refuses_weights_of_another_rank(tmp_path: Path) -> None:
    rc = _rc(METHOD)
    _saved(tmp_path, rc)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(rc))
    model, _ = load_run(tmp_path, tmp_path, torch.device("cpu"))
    assert not model.training
    rc16 = _rc({**METHOD, "lora": {**METHOD["lora"], "r": 16}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(rc16))
    with pytest.raises(ManifestError, match=r"lora\.r: 4 in the weights, 16 in the model"):
        load_run(tmp_path, tmp_path, torch.device("cpu"))


def test_zero_shot_train_step_writes_empty_weights_that_predict_loads(repo_root: Path,
                                                                      tmp_path: Path) -> None:
    from samlora.training.loop import train_run

    cfg = load_config([repo_root / "params.yaml"],
                      ["methods.zero_shot.backbone=sam_tiny", "backbones.sam_tiny.img_size=64",
                       f"data.processed_dir={tmp_path / 'absent'}"])
    run = tmp_path / "run"
    assert train_run(cfg, "zero_shot", "drive", 0, run) == {}
    tensors, manifest = load_weights(run / WEIGHTS)
    assert tensors == {} and manifest["trainable"] == "0" and manifest["epochs"] == "0"
    assert not (run / "last.pt").exists()
    model, rc = load_run(run, tmp_path, torch.device("cpu"))
    assert rc["method"] == "zero_shot"
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64) * 255).shape == (1, 1, 64, 64)
