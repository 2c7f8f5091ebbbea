"""SAM 2 export: LoRA merged, whole SAM2Base in the official layout, loaded by sam2 alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hydra import initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf
from safetensors.torch import load_file

from samlora.cli import main
from samlora.models.adapter import SpatialAdapter
from samlora.models.export import adapter_path
from samlora.models.export_sam2 import export_sam2, run_base
from samlora.models.registry import build_model
from samlora.models.sam2_build import build_sam2_base, import_sam2, model_config
from samlora.models.sam2_segmenter import Sam2Segmenter
from samlora.models.segmenter import trainable_state_dict
from samlora.training.manifest import build_manifest
from samlora.training.state import WEIGHTS, frozen_fingerprint, save_weights
from samlora.utils.io import sha256_file

TINY: dict[str, Any] = {"family": "sam2", "arch": "tiny", "img_size": 256, "checkpoint": None}
SAM2LORA: dict[str, Any] = {  # methods.sam2lora as params.yaml has it, on the tiny backbone
    "backbone": "sam2_tiny",
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "targets": ["encoder_attn", "decoder_attn"]},
    "adapter": None, "decoder": "freeze",
    "loss": {"bce": 1.0, "dice": 1.0, "dice_over": "batch", "focal_tversky": 1.0,
             "cldice": 0.0, "cldice_iters": 10, "iou_l1": 0.1},
}
MEMORY = ("memory_attention.", "memory_encoder.", "maskmem_tpos_enc", "obj_ptr_proj.")


def _rc(method: dict[str, Any], backbone: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    return {"method": "sam2lora", "train_set": "drive", "seed": seed, "backbone": "sam2_tiny",
            "method_cfg": method, "backbone_cfg": backbone}


def _trained(rc: dict[str, Any]) -> Sam2Segmenter:
    """The run's model (seeded as build_run_model does) with every trainable tensor moved."""
    torch.manual_seed(rc["seed"])
    model = build_model(rc["method_cfg"], rc["backbone_cfg"], models_dir=Path("/nonexistent"))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # lora_B (and the adapter's last conv) start at zero
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def _from_export(ckpt: Path, adapter_file: Path | None = None) -> Sam2Segmenter:
    """A segmenter on a SAM2Base instantiated from the config by sam2's classes, strict load."""
    base = instantiate(model_config("tiny", 256), _recursive_=True)
    base.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"],
                         strict=True)
    adapter = None
    if adapter_file is not None:
        adapter = SpatialAdapter(base.sam_prompt_embed_dim, 16)
        adapter.load_state_dict(load_file(str(adapter_file)), strict=True)
    return Sam2Segmenter(base, adapter).eval()


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _tiny_overrides() -> list[str]:
    """Hydra overrides turning the packaged sam2.1_hiera_t config into the tiny 256 px one."""
    import importlib.resources

    packaged = importlib.resources.files("sam2") / "configs/sam2.1/sam2.1_hiera_t.yaml"
    ref = _flat(OmegaConf.to_container(OmegaConf.load(str(packaged)).model))
    tiny = _flat(OmegaConf.to_container(model_config("tiny", 256)))
    assert set(ref) <= set(tiny)  # the tiny config only changes or adds values
    return [f"++model.{k}={json.dumps(v)}" for k, v in tiny.items()
            if k not in ref or v != ref[k]]


def test_lora_run_exports_and_matches_after_reload(tmp_path: Path) -> None:
    rc = _rc(SAM2LORA, TINY)
    model = _trained(rc)
    x = torch.rand(1, 3, 256, 256) * 255
    qkv = model.image_encoder.trunk.blocks[0].attn.qkv
    dense = qkv.base_layer.weight.detach().clone()
    with torch.no_grad():
        before = model(x)
    base, source = run_base(rc, Path("/nonexistent"))
    assert "random init" in source and "seed 0" in source
    written = export_sam2(model, base, tmp_path / "sam2lora.pt")
    assert written == {"checkpoint": tmp_path / "sam2lora.pt"}
    sd = torch.load(written["checkpoint"], map_location="cpu", weights_only=True)["model"]
    torch.manual_seed(0)
    fresh = build_sam2_base("tiny", 256).state_dict()
    assert set(sd) == set(fresh)  # the official key set of SAM2Base
    assert any(k.startswith(MEMORY) for k in sd)
    for k in (k for k in sd if k.startswith(MEMORY)):  # memory: the run's seeded init
        assert torch.equal(sd[k], fresh[k]), k
    merged = sd["image_encoder.trunk.blocks.0.attn.qkv.weight"]
    assert (merged - dense).abs().max() > 1e-4  # the merge changed the dense weight
    with torch.no_grad():
        after = _from_export(written["checkpoint"])(x)
    assert (before - after).abs().max().item() <= 1e-5
    assert not list(tmp_path.glob(".*tmp*"))


def test_adapter_goes_beside_the_checkpoint(tmp_path: Path) -> None:
    rc = _rc({**SAM2LORA, "adapter": {"hidden": 16}}, TINY, seed=3)
    model = _trained(rc)
    model.adapter.norm.running_mean.uniform_(-0.1, 0.1)
    x = torch.rand(1, 3, 256, 256) * 255
    with torch.no_grad():
        before = model(x)
    written = export_sam2(model, run_base(rc, Path("/nonexistent"))[0], tmp_path / "a.pt")
    assert written["adapter"] == adapter_path(tmp_path / "a.pt")
    with torch.no_grad():
        after = _from_export(written["checkpoint"], written["adapter"])(x)
    assert (before - after).abs().max().item() <= 1e-5


def test_memory_modules_come_from_the_base_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(11)
    official = build_sam2_base("tiny", 256)
    ckpt = tmp_path / "models" / "tiny.pt"
    ckpt.parent.mkdir()
    torch.save({"model": official.state_dict()}, ckpt)
    spec = {"file": ckpt.name, "url": ckpt.as_uri(), "bytes": ckpt.stat().st_size,
            "sha256": sha256_file(ckpt)}
    rc = _rc(SAM2LORA, {**TINY, "checkpoint": spec}, seed=5)
    torch.manual_seed(5)
    model = build_model(SAM2LORA, rc["backbone_cfg"], models_dir=ckpt.parent)
    base, source = run_base(rc, ckpt.parent)
    assert source == f"base checkpoint tiny.pt (sha256 {spec['sha256']})"
    sd = torch.load(export_sam2(model, base, tmp_path / "e.pt")["checkpoint"],
                    weights_only=True)["model"]
    ref = official.state_dict()
    for k in (k for k in sd if k.startswith(MEMORY)):
        assert torch.equal(sd[k], ref[k]), k
    assert torch.equal(sd["sam_mask_decoder.iou_token.weight"],
                       ref["sam_mask_decoder.iou_token.weight"])  # frozen, untouched


def test_a_base_that_is_not_the_runs_own_is_refused(tmp_path: Path) -> None:
    model = _trained(_rc(SAM2LORA, TINY, seed=0))
    other, _ = run_base(_rc(SAM2LORA, TINY, seed=1), Path("/nonexistent"))
    with pytest.raises(RuntimeError, match="not the run's own"):
        export_sam2(model, other, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(ValueError, match="Sam2Segmenter and a SAM2Base"):
        export_sam2(model, torch.nn.Linear(1, 1), tmp_path / "x.pt")


def test_export_cli_loads_through_sam2_build_sam2(repo_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    rc = _rc(SAM2LORA, TINY, seed=2)
    model = _trained(rc)
    save_weights(run / WEIGHTS, trainable_state_dict(model),
                 build_manifest(model, rc, frozen_fingerprint(model), epochs=1))
    (run / "config.yaml").write_text(yaml.safe_dump(rc))
    out = tmp_path / "export" / "sam2.pt"
    assert main(["export", "--params", str(repo_root / "params.yaml"), "--run", str(run),
                 "--out", str(out), "--models-dir", str(tmp_path)]) == 0
    record = yaml.safe_load(out.with_name("sam2.export.yaml").read_text())
    assert record["method"] == "sam2lora" and "random init" in record["memory_modules"]
    build_sam = import_sam2("sam2.build_sam")
    with initialize_config_module("sam2", version_base="1.2"):  # sam2's own loader, strict
        base = build_sam.build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", str(out),
                                    device="cpu", hydra_overrides_extra=_tiny_overrides(),
                                    apply_postprocessing=False)  # that option alters decoding
    x = torch.rand(1, 3, 256, 256) * 255
    with torch.no_grad():
        diff = (model(x) - Sam2Segmenter(base).eval()(x)).abs().max().item()
    assert diff <= 1e-5
