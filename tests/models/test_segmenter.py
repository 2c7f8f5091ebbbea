"""SamSegmenter: prompt-free forward, freezing policy, trainable weights, learning on DRIVE."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from samlora.losses import build_loss
from samlora.models.segmenter import (
    SamSegmenter,
    build_segmenter,
    count_parameters,
    load_trainable_state_dict,
    trainable_state_dict,
)


def _groups(model: SamSegmenter) -> dict[str, set[str]]:
    names = {n for n, _ in model.named_parameters()}
    return {
        "lora": {n for n in names if ".lora_A." in n or ".lora_B." in n},
        "adapter": {n for n in names if n.startswith("adapter.")},
        "decoder": {n for n in names if n.startswith("sam.mask_decoder.")},
        "trainable": {n for n, p in model.named_parameters() if p.requires_grad},
    }


def test_forward_shape_and_input_check(topolora_cfg: dict, tiny_backbone: dict) -> None:
    model = build_segmenter(topolora_cfg, tiny_backbone)
    assert model.img_size == 256 and model.training
    logits = model(torch.rand(2, 3, 256, 256) * 255)
    assert logits.shape == (2, 1, 256, 256) and logits.dtype == torch.float32
    with pytest.raises(ValueError, match="256"):
        model(torch.rand(1, 3, 128, 128))


def test_batch_equals_one_by_one(topolora_cfg: dict, tiny_backbone: dict) -> None:
    model = build_segmenter(topolora_cfg, tiny_backbone).eval()
    x = torch.rand(3, 3, 256, 256) * 255
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-4)


def test_only_lora_adapter_decoder_train(topolora_cfg: dict, tiny_backbone: dict) -> None:
    model = build_segmenter(topolora_cfg, tiny_backbone)
    g = _groups(model)
    assert g["lora"] and g["adapter"] and g["decoder"]
    assert g["trainable"] == g["lora"] | g["adapter"] | g["decoder"]
    x = torch.rand(1, 3, 256, 256) * 255
    model(x).sum().backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
    lora_b = [p for n, p in model.named_parameters() if ".lora_B." in n]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_b)


def test_frozen_decoder_and_decoder_only(topolora_cfg: dict, decoder_only_cfg: dict,
                                         tiny_backbone: dict) -> None:
    frozen = build_segmenter({**topolora_cfg, "decoder": "freeze"}, tiny_backbone)
    g = _groups(frozen)
    assert g["trainable"] == g["lora"] | g["adapter"]
    assert count_parameters(frozen)["decoder"] == 0
    only = build_segmenter(decoder_only_cfg, tiny_backbone)
    g = _groups(only)
    assert only.adapter is None and not g["lora"] and g["trainable"] == g["decoder"]
    with pytest.raises(ValueError, match="decoder"):
        build_segmenter({**topolora_cfg, "decoder": "partly"}, tiny_backbone)


def test_count_parameters_adds_up(topolora_cfg: dict, tiny_backbone: dict) -> None:
    c = count_parameters(build_segmenter(topolora_cfg, tiny_backbone))
    assert c["trainable"] == c["lora"] + c["adapter"] + c["decoder"]
    assert c["trainable_pct"] == pytest.approx(100 * c["trainable"] / c["total"])
    assert c["adapter"] == 64 * 9 + 64 * 256 + 2 * 256 + 256 * 64


def test_accepts_omegaconf(topolora_cfg: dict, tiny_backbone: dict) -> None:
    m, b = OmegaConf.create(topolora_cfg), OmegaConf.create(tiny_backbone)
    assert isinstance(build_segmenter(m, b), SamSegmenter)


def test_trainable_state_dict_round_trip(topolora_cfg: dict, tiny_backbone: dict,
                                         tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_segmenter(topolora_cfg, tiny_backbone)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.rand(2, 3, 256, 256) * 255
    for _ in range(2):
        model(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
    sd = trainable_state_dict(model)
    assert "adapter.norm.running_mean" in sd and "adapter.norm.num_batches_tracked" in sd
    assert not any("base_layer" in k or "image_encoder.blocks.0.attn.qkv" in k for k in sd)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "adapter.safetensors"))
    torch.manual_seed(0)  # same seed: same frozen random backbone
    fresh = build_segmenter(topolora_cfg, tiny_backbone)
    load_trainable_state_dict(fresh, load_file(str(tmp_path / "adapter.safetensors")))
    model.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    assert int(fresh.adapter.norm.num_batches_tracked) == 2


def test_load_trainable_lists_mismatches(topolora_cfg: dict, tiny_backbone: dict) -> None:
    model = build_segmenter(topolora_cfg, tiny_backbone)
    sd = trainable_state_dict(model)
    gone = "adapter.project.weight"
    sd["sam.bogus"] = sd.pop(gone)
    with pytest.raises(RuntimeError, match="missing") as err:
        load_trainable_state_dict(model, sd)
    assert gone in str(err.value) and "sam.bogus" in str(err.value)
    sd = trainable_state_dict(model)
    sd[gone] = torch.zeros(3)
    with pytest.raises(RuntimeError, match="shape"):
        load_trainable_state_dict(model, sd)


def test_a_few_steps_on_drive_reduce_the_loss(topolora_cfg: dict, tiny_backbone: dict,
                                              drive_21: tuple[torch.Tensor, torch.Tensor]) -> None:
    image, target = drive_21
    torch.manual_seed(0)
    model = build_segmenter(topolora_cfg, tiny_backbone)
    loss_fn = build_loss(topolora_cfg["loss"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(20):
        loss, terms = loss_fn(model(image), target)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(terms["loss"])
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
