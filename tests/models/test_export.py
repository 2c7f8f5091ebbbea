"""Export: LoRA merged into dense weights, official SAM layout, adapter beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from samlora.cli import main
from samlora.models.adapter import SpatialAdapter
from samlora.models.export import adapter_path, export_sam, merge_lora
from samlora.models.registry import build_model
from samlora.models.sam import build_sam
from samlora.models.segmenter import SamSegmenter, trainable_state_dict
from samlora.training.manifest import build_manifest
from samlora.training.state import WEIGHTS, frozen_fingerprint, save_weights

TINY = {"family": "sam", "arch": "tiny", "img_size": 64, "checkpoint": None}
METHOD = {"backbone": "sam_tiny",
          "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targets": "encoder_ffn"},
          "adapter": {"hidden": 16}, "decoder": "train",
          "loss": {"bce": 1.0, "dice": 1.0, "cldice": 0.5, "cldice_iters": 10}}


def _trained(seed: int = 0) -> SamSegmenter:
    """A tiny topolora model whose LoRA, adapter and decoder have moved from their init."""
    torch.manual_seed(seed)
    model = build_model(METHOD, TINY)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:  # lora_B and the adapter's last conv start at zero
                p.add_(torch.randn_like(p) * 0.05)
    model.adapter.norm.running_mean.uniform_(-0.1, 0.1)
    return model.eval()


def _fresh_from_export(ckpt: Path, adapter_file: Path) -> SamSegmenter:
    sam = build_sam("tiny", 64)  # segment_anything's classes, random init
    sam.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True), strict=True)
    from safetensors import safe_open

    with safe_open(str(adapter_file), framework="pt") as f:  # the file says how to rebuild it
        meta = f.metadata()
    adapter = SpatialAdapter(int(meta["channels"]), int(meta["hidden"]), meta["variant"],
                             meta["init"])
    adapter.load_state_dict(load_file(str(adapter_file)), strict=True)
    return SamSegmenter(sam, adapter).eval()


def test_the_exported_adapter_records_its_variant(tmp_path: Path) -> None:
    """The paper's text variant (no BN, ReLU) rebuilds from the file's metadata alone."""
    torch.manual_seed(0)
    sam = build_sam("tiny", 64)
    model = SamSegmenter(sam, SpatialAdapter(sam.prompt_encoder.embed_dim, 16, "text",
                                             "default")).eval()
    x = torch.rand(1, 3, 64, 64) * 255
    written = export_sam(model, tmp_path / "text.pth")
    fresh = _fresh_from_export(written["checkpoint"], written["adapter"])
    assert fresh.adapter.variant == "text" and fresh.adapter.init == "default"
    with torch.no_grad():
        assert (model(x) - fresh(x)).abs().max().item() <= 1e-5


def test_merge_keeps_outputs_and_restores_plain_linears() -> None:
    model = _trained()
    x = torch.rand(2, 3, 64, 64) * 255
    lin1 = model.sam.image_encoder.blocks[0].mlp.lin1
    base = lin1.base_layer.weight.detach().clone()
    with torch.no_grad():
        before = model(x)
        assert merge_lora(model) == 4  # 2 blocks x lin1/lin2
        after = model(x)
    assert (before - after).abs().max().item() <= 1e-5
    assert (model.sam.image_encoder.blocks[0].mlp.lin1.weight - base).abs().max() > 1e-4
    assert not any(".lora_" in n or "base_layer" in n for n, _ in model.named_parameters())
    assert type(model.sam.image_encoder.blocks[0].mlp.lin1) is torch.nn.Linear


def test_export_loads_into_a_fresh_segment_anything_model(tmp_path: Path) -> None:
    model = _trained()
    x = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        before = model(x)
    written = export_sam(model, tmp_path / "sam_topolora.pth")
    assert written == {"checkpoint": tmp_path / "sam_topolora.pth",
                       "adapter": tmp_path / "sam_topolora.adapter.safetensors"}
    assert adapter_path(written["checkpoint"]) == written["adapter"]
    sd = torch.load(written["checkpoint"], map_location="cpu", weights_only=True)
    assert set(sd) == set(build_sam("tiny", 64).state_dict())  # the official key layout
    fresh = _fresh_from_export(written["checkpoint"], written["adapter"])
    with torch.no_grad():
        after = fresh(x)
    assert (before - after).abs().max().item() <= 1e-5
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind


def test_export_cli_from_a_run_folder(repo_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    rc = {"method": "topolora_sam", "train_set": "drive", "seed": 0, "backbone": "sam_tiny",
          "method_cfg": METHOD, "backbone_cfg": TINY}
    torch.manual_seed(0)  # as build_run_model seeds a random-weight backbone
    model = build_model(METHOD, TINY)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    save_weights(run / WEIGHTS, trainable_state_dict(model),
                 build_manifest(model, rc, frozen_fingerprint(model), epochs=1))
    (run / "config.yaml").write_text(yaml.safe_dump(rc))
    out = tmp_path / "export" / "sam.pth"
    assert main(["export", "--params", str(repo_root / "params.yaml"), "--run", str(run),
                 "--out", str(out), "--models-dir", str(tmp_path)]) == 0
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        assert (model.eval()(x) - _fresh_from_export(out, adapter_path(out))(x)).abs().max() <= 1e-5
    assert yaml.safe_load(out.with_name("sam.export.yaml").read_text())["method"] == "topolora_sam"
    # a baseline run has no SAM layout to export to
    with pytest.raises(ValueError, match="only the sam and sam2 families"):
        export_sam(build_model({"lora": None, "adapter": None},
                               {"family": "baseline", "arch": "segformer_tiny", "img_size": 64,
                                "checkpoint": None, "pretrained": None}), tmp_path / "x.pth")


def test_vit_b_export_loads_through_sam_model_registry(tmp_path: Path) -> None:
    from segment_anything import sam_model_registry

    method = {**METHOD, "adapter": None}
    torch.manual_seed(0)
    model = build_model(method, {**TINY, "arch": "vit_b", "img_size": 1024})
    lin = model.sam.image_encoder.blocks[3].mlp.lin1
    with torch.no_grad():
        lin.lora_B["default"].weight.normal_(0, 0.02)
        merged = lin.base_layer.weight + lin.scaling["default"] * (
            lin.lora_B["default"].weight @ lin.lora_A["default"].weight)
    written = export_sam(model, tmp_path / "vit_b.pth")
    assert set(written) == {"checkpoint"}
    sam = sam_model_registry["vit_b"](checkpoint=str(written["checkpoint"]))
    got = sam.image_encoder.blocks[3].mlp.lin1.weight
    assert (got - merged).abs().max().item() <= 1e-6
