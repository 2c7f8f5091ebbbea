"""Baselines: the shared interface, the Mask2Former reduction, pretrained weights, sizes."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from samlora.models.baselines.nets import ARCHS, build_net
from samlora.models.baselines.segmenter import BaselineSegmenter
from samlora.models.registry import build_model
from samlora.models.segmenter import count_parameters

TINY = ["unet_tiny", "deeplabv3plus_tiny", "segformer_tiny", "mask2former_tiny"]
METHOD = {"lora": None, "adapter": None, "encoder": "train", "decoder": "train"}


def _backbone(arch: str, size: int = 64, pretrained: str | None = None) -> dict:
    return {"family": "baseline", "arch": arch, "img_size": size, "checkpoint": None,
            "pretrained": pretrained}


@pytest.mark.parametrize("arch", TINY)
def test_tiny_baselines_share_the_segmenter_interface(arch: str,
                                                      drive_21: tuple[torch.Tensor, ...]) -> None:
    torch.manual_seed(0)
    model = build_model(METHOD, _backbone(arch))
    image = torch.nn.functional.interpolate(drive_21[0], size=(64, 64), mode="bilinear")
    logits = model(image.repeat(2, 1, 1, 1))
    assert model.img_size == 64 and model.training
    assert logits.shape == (2, 1, 64, 64) and torch.isfinite(logits).all()
    c = count_parameters(model)
    assert c["trainable"] == c["total"] > 0
    assert c["encoder"] > 0 and c["decoder"] > 0 and c["head"] > 0
    assert c["encoder"] + c["decoder"] + c["head"] == c["total"]
    assert c["lora"] == c["adapter"] == 0
    with pytest.raises(ValueError, match="expected B×3×64×64"):
        model(torch.zeros(1, 3, 32, 32))


def test_normalisation_is_imagenet_mean_std() -> None:
    seen = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return x[:, :1]

    model = BaselineSegmenter(Probe(), "unet", 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    model(mean.expand(1, 3, 32, 32))
    model((mean + std).expand(1, 3, 32, 32))
    assert seen[0].abs().max().item() < 1e-5
    assert torch.allclose(seen[1], torch.ones(1, 3, 32, 32), atol=1e-5)


def test_mask2former_reduction_known_answer() -> None:
    """Two queries, classes (bg, fg, no-object): s_c = Σ_q p_q(c)·σ(m_q); logit = log s_fg/s_bg."""
    cls = torch.log(torch.tensor([[[0.2, 0.7, 0.1], [0.6, 0.1, 0.3]]]))  # softmax = these
    masks = torch.zeros(1, 2, 2, 2)
    masks[0, 0] = torch.tensor([[10.0, -10.0], [0.0, 0.0]])
    masks[0, 1] = torch.tensor([[-10.0, 10.0], [0.0, 10.0]])

    class Fake(nn.Module):
        def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
            return SimpleNamespace(class_queries_logits=cls, masks_queries_logits=masks)

    out = BaselineSegmenter(Fake(), "mask2former", 2)(torch.zeros(1, 3, 2, 2))
    s = torch.sigmoid(masks[0])  # Q×2×2
    fg = 0.7 * s[0] + 0.1 * s[1]
    bg = 0.2 * s[0] + 0.6 * s[1]
    expected = torch.log(fg + 1e-6) - torch.log(bg + 1e-6)
    assert torch.allclose(out[0, 0], expected, atol=1e-5)
    # pixel (0, 0): query 0 only, so sigma(logit) is its fg share 0.7 / 0.9
    assert torch.sigmoid(out[0, 0, 0, 0]).item() == pytest.approx(0.7 / 0.9, abs=1e-4)
    assert out[0, 0, 1, 1].item() == pytest.approx(
        math.log((0.35 + 0.1 * s[1, 1, 1].item()) / (0.1 + 0.6 * s[1, 1, 1].item())), abs=1e-4)


def test_frozen_encoder_and_bad_configs() -> None:
    model = build_model({**METHOD, "encoder": "freeze"}, _backbone("segformer_tiny"))
    c = count_parameters(model)
    assert c["encoder"] == 0 and c["trainable"] == c["decoder"] + c["head"] > 0
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": "encoder_ffn"}
    with pytest.raises(ValueError, match="lora is not supported on baseline"):
        build_model({**METHOD, "lora": lora}, _backbone("unet_tiny"))
    with pytest.raises(ValueError, match="multiple of 32"):
        build_model(METHOD, _backbone("mask2former_tiny", size=48))
    with pytest.raises(ValueError, match="unknown baseline architecture"):
        build_model(METHOD, _backbone("unet_resnet999"))


def _offline(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """No network and an empty Hugging Face cache, whatever this machine has."""
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))


def test_missing_smp_weights_say_what_to_download(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    _offline(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError) as err:
        build_model(METHOD, _backbone("unet_tiny", pretrained="imagenet"))
    msg = str(err.value)
    assert "smp-hub/resnet18.imagenet" in msg and "huggingface-cli download" in msg
    assert "pretrained to null" in msg
    with pytest.raises(ValueError, match="no pretrained weights 'nope'"):
        build_model(METHOD, _backbone("unet_tiny", pretrained="nope"))


def test_missing_hf_weights_say_what_to_download(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    _offline(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError) as err:
        build_model(METHOD, _backbone("segformer_tiny", pretrained="nvidia/mit-b0"))
    msg = str(err.value)
    assert "huggingface-cli download nvidia/mit-b0" in msg and "config.json" in msg
    # pretrained=False (parameter tables) never reads weights
    model = build_model(METHOD, _backbone("segformer_tiny", pretrained="nvidia/mit-b0"),
                        pretrained=False)
    assert count_parameters(model)["total"] > 0


def test_pretrained_weights_from_a_local_folder(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = build_net("segformer_tiny", None)
    source.save_pretrained(tmp_path / "weights")
    model = build_model(METHOD, _backbone("segformer_tiny", pretrained=str(tmp_path / "weights")))
    for name, p in source.state_dict().items():
        assert torch.equal(model.net.state_dict()[name], p), name
    # a source of another architecture is refused, naming the keys that do not fit
    build_net("mask2former_tiny", None).save_pretrained(tmp_path / "other")
    with pytest.raises(RuntimeError, match="do not fit the architecture"):
        build_model(METHOD, _backbone("segformer_tiny", pretrained=str(tmp_path / "other")))


def test_real_size_parameter_counts() -> None:
    expected = {"unet_resnet34": 24_436_369, "deeplabv3plus_resnet50": 26_677_585,
                "segformer_b0": 3_714_401, "mask2former_swin_t": 47_403_133}
    for arch, total in expected.items():
        model = build_model(METHOD, _backbone(arch, size=512), pretrained=False)
        assert count_parameters(model)["total"] == total, arch
        assert ARCHS[arch].tiny in ARCHS


def test_deeplab_trains_at_batch_size_one() -> None:
    """The study's batch size is 1: DeepLabV3+'s pooling-branch BatchNorm must not refuse it."""
    from samlora.models.baselines.nets import PooledBatchNorm

    torch.manual_seed(0)
    model = build_model(METHOD, _backbone("deeplabv3plus_tiny"))
    swapped = [m for m in model.modules() if isinstance(m, PooledBatchNorm)]
    assert len(swapped) == 1  # only the ASPP pooling branch; same keys and parameter count
    assert count_parameters(model)["total"] == 11_285_681
    model(torch.rand(1, 3, 64, 64) * 255).mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # with two images it is plain BatchNorm (batch statistics)
    bn, plain = swapped[0], torch.nn.BatchNorm2d(swapped[0].num_features)
    plain.load_state_dict(bn.state_dict())
    z = torch.randn(2, bn.num_features, 1, 1)
    assert torch.allclose(bn(z), plain(z))
