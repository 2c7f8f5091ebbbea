"""Baselines as TopoLoRA-SAM's Seglab code builds them: Mask2Former's noisy-OR reduction
(``backbones.<id>.reduction``) and SegFormer from a fine-tuned segmentation checkpoint."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from samlora.models.baselines import nets
from samlora.models.baselines.nets import build_net
from samlora.models.baselines.segmenter import BaselineSegmenter
from samlora.models.registry import build_model

METHOD = {"lora": None, "adapter": None, "encoder": "train", "decoder": "train"}
EPS = 1e-6  # the stated noisy-OR bound: P is clamped to [EPS, 1 - EPS]


def _backbone(arch: str, pretrained: str | None = None, **extra: object) -> dict:
    return {"family": "baseline", "arch": arch, "img_size": 64, "checkpoint": None,
            "pretrained": pretrained, **extra}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _fake_mask2former(cls: torch.Tensor, masks: torch.Tensor) -> nn.Module:
    class Fake(nn.Module):
        def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
            return SimpleNamespace(class_queries_logits=cls, masks_queries_logits=masks)

    return Fake()


def test_noisy_or_known_answer_and_gradient() -> None:
    """P = 1 − Π_q (1 − p_q·σ(m_q)), p_q = softmax over (fg, no-object) taking fg; the
    logit of P clamped to [ε, 1 − ε]. Three queries on a 2×2 map."""
    # p_q = softmax(class logits)[fg]: 0.8; 1/(1 + e^−50) = 1 − 2e-22 (float32: 1); exactly 0
    p = [0.8, 1.0 / (1.0 + math.exp(-50.0)), 0.0]
    cls = torch.tensor([[[math.log(0.8), math.log(0.2)], [25.0, -25.0], [-1e4, 0.0]]],
                       requires_grad=True)
    m = [[[2.0, -1.0], [-50.0, 0.0]],   # query 0
         [[-50.0, 0.5], [-50.0, 50.0]],  # query 1: at (1, 1) p·σ = 1 − tiny
         [[3.0, 3.0], [3.0, 3.0]]]       # query 2: p·σ = 0 everywhere
    masks = torch.tensor([m], requires_grad=True)
    model = BaselineSegmenter(_fake_mask2former(cls, masks), "mask2former", 2, "noisy_or")
    out = model(torch.zeros(1, 3, 2, 2))
    assert out.shape == (1, 1, 2, 2)

    for i in range(2):
        for j in range(2):
            none = math.prod(1.0 - p[q] * _sigmoid(m[q][i][j]) for q in range(3))
            prob = min(max(1.0 - none, EPS), 1.0 - EPS)
            expected = math.log(prob / (1.0 - prob))
            assert out[0, 0, i, j].item() == pytest.approx(expected, abs=1e-4), (i, j)
    # (0, 1): two queries combine, 1 − (1 − 0.8·σ(−1))·(1 − σ(0.5)); (1, 0) none claims it;
    # (1, 1) one query is certain: the logit saturates at ±log((1 − ε)/ε)
    bound = math.log((1 - EPS) / EPS)
    assert out[0, 0, 1, 0].item() == pytest.approx(-bound, abs=1e-4)
    assert out[0, 0, 1, 1].item() == pytest.approx(bound, abs=1e-4)
    assert torch.sigmoid(out[0, 0, 0, 1]).item() == pytest.approx(
        1 - (1 - 0.8 * _sigmoid(-1.0)) * (1 - _sigmoid(0.5)), abs=1e-5)

    out.sum().backward()
    assert torch.isfinite(cls.grad).all() and torch.isfinite(masks.grad).all()
    assert cls.grad[0, 0].abs().sum() > 0 and masks.grad[0, 0, 0, 0] > 0
    assert masks.grad[0, 1, 0, 1] > 0  # query 1 raises P at (0, 1)


def test_noisy_or_needs_a_one_label_net() -> None:
    fake = _fake_mask2former(torch.zeros(1, 2, 3), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="noisy_or reduction needs Mask2Former with 1"):
        BaselineSegmenter(fake, "mask2former", 2, "noisy_or")(torch.zeros(1, 3, 2, 2))


def test_tiny_mask2former_noisy_or_builds_and_loads(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = build_model(METHOD, _backbone("mask2former_tiny", reduction="noisy_or"))
    assert model.reduction == "noisy_or" and model.net.config.num_labels == 1
    assert model.net.class_predictor.out_features == 2  # foreground + no-object
    logits = model(torch.rand(2, 3, 64, 64) * 255)
    assert logits.shape == (2, 1, 64, 64) and torch.isfinite(logits).all()
    logits.mean().backward()
    assert model.net.class_predictor.weight.grad is not None
    # the default keeps 2 labels
    assert build_model(METHOD, _backbone("mask2former_tiny")).net.config.num_labels == 2

    # ADE20K-style (150 labels) and two-label sources: only the class head is new
    for labels in (150, 2):
        cfg = nets._hf_config(nets.get_arch("mask2former_tiny"))
        cfg.num_labels = labels
        from transformers import Mask2FormerForUniversalSegmentation

        source = Mask2FormerForUniversalSegmentation(cfg)
        folder = tmp_path / f"m2f_{labels}"
        source.save_pretrained(folder)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="samlora.models.baselines.nets"):
            built = build_model(METHOD, _backbone("mask2former_tiny", str(folder),
                                                  reduction="noisy_or"))
        new = built.net.state_dict()
        for name, p in source.state_dict().items():
            if name.startswith(("class_predictor.", "criterion.")):
                assert new[name].shape[0] == 2, name
            else:
                assert torch.equal(new[name], p), name
        assert "re-initialised" in caplog.text and "class_predictor.weight" in caplog.text
        assert f"source shape [{labels + 1}, 32]" in caplog.text

    # the default (logratio, 2 labels) loads the ADE20K-style source too: the loss's
    # label-sized criterion.empty_weight no longer counts as a misfit
    default = build_model(METHOD, _backbone("mask2former_tiny", str(tmp_path / "m2f_150")))
    assert default.net.class_predictor.out_features == 3


def test_segformer_from_a_segmentation_checkpoint(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A 150-class SegformerForSemanticSegmentation: encoder and decode head load, only
    decode_head.classifier is new."""
    from transformers import SegformerForSemanticSegmentation

    torch.manual_seed(2)
    cfg = nets._hf_config(nets.get_arch("segformer_tiny"))
    cfg.num_labels = 150
    source = SegformerForSemanticSegmentation(cfg)
    source.save_pretrained(tmp_path / "ade")
    with caplog.at_level(logging.INFO, logger="samlora.models.baselines.nets"):
        model = build_model(METHOD, _backbone("segformer_tiny", str(tmp_path / "ade")))
    new = model.net.state_dict()
    assert any(k.startswith("decode_head.linear_fuse") for k in new)
    for name, p in source.state_dict().items():
        if name.startswith("decode_head.classifier."):
            assert new[name].shape[0] == 1, name
        else:
            assert torch.equal(new[name], p), name
    assert "decode_head.classifier.weight (source shape [150, 32, 1, 1])" in caplog.text
    assert "decode_head.* (not in the source)" not in caplog.text
    assert model(torch.rand(1, 3, 64, 64) * 255).shape == (1, 1, 64, 64)


@pytest.mark.parametrize("cls_name", ["SegformerModel", "SegformerForImageClassification"])
def test_segformer_from_an_encoder_only_checkpoint(cls_name: str, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """mit-b0 style: the encoder loads, the whole decode head is new, a classifier dropped."""
    import transformers

    torch.manual_seed(3)
    cfg = nets._hf_config(nets.get_arch("segformer_tiny"))
    cfg.num_labels = 1000
    source = getattr(transformers, cls_name)(cfg)
    source.save_pretrained(tmp_path / "mit")
    with caplog.at_level(logging.INFO, logger="samlora.models.baselines.nets"):
        model = build_model(METHOD, _backbone("segformer_tiny", str(tmp_path / "mit")))
    new = model.net.state_dict()
    saved = {k if k.startswith("segformer.") else f"segformer.{k}": v
             for k, v in source.state_dict().items() if not k.startswith("classifier.")}
    assert saved and all(torch.equal(new[k], v) for k, v in saved.items())
    assert "re-initialised decode_head.* (not in the source)" in caplog.text


def test_a_partial_decode_head_or_another_shape_does_not_fit(tmp_path: Path) -> None:
    """The check stays strict: only the label-sized layer may change shape, and the decode
    head is either wholly absent (encoder-only) or present."""
    from safetensors.torch import load_file, save_file

    build_net("segformer_tiny", None).save_pretrained(tmp_path / "ok")
    path = tmp_path / "ok" / "model.safetensors"
    weights = load_file(path)
    del weights["decode_head.batch_norm.num_batches_tracked"]  # as older checkpoints lack it
    save_file(weights, path, metadata={"format": "pt"})
    build_net("segformer_tiny", str(tmp_path / "ok"))  # a BatchNorm counter is no weight
    del weights["decode_head.linear_fuse.weight"]
    save_file(weights, path, metadata={"format": "pt"})
    with pytest.raises(RuntimeError, match=r"missing \['decode_head.linear_fuse.weight'\]"):
        build_net("segformer_tiny", str(tmp_path / "ok"))

    cfg = nets._hf_config(nets.get_arch("segformer_tiny"))
    cfg.decoder_hidden_size = 16  # a decode head of another width
    from transformers import SegformerForSemanticSegmentation

    SegformerForSemanticSegmentation(cfg).save_pretrained(tmp_path / "wide")
    with pytest.raises(RuntimeError, match="other shape.*decode_head.linear_fuse.weight"):
        build_net("segformer_tiny", str(tmp_path / "wide"))


def test_reduction_config_errors() -> None:
    with pytest.raises(ValueError, match=r"backbones\.<id>\.reduction.*mask2former") as err:
        build_model(METHOD, _backbone("unet_tiny", reduction="noisy_or"))
    assert "\n" not in str(err.value) and "unet_tiny" in str(err.value)
    with pytest.raises(ValueError, match=r"backbones\.<id>\.reduction must be one of"):
        build_model(METHOD, _backbone("mask2former_tiny", reduction="mean"))
    with pytest.raises(ValueError, match=r"backbones\.<id>\.reduction"):
        build_model(METHOD, _backbone("segformer_tiny", reduction="noisy_or"), pretrained=False)
    # logratio is the default and accepted anywhere
    assert build_model(METHOD, _backbone("unet_tiny", reduction="logratio")).kind == "unet"


def test_params_table_lists_the_reference_backbones() -> None:
    """New backbone ids are counted through the methods that name them."""
    from samlora.models.params_table import params_table

    backbones = {
        "segformer_b0_ade": {**_backbone("segformer_b0"), "img_size": 512,
                             "pretrained": "nvidia/segformer-b0-finetuned-ade-512-512"},
        "mask2former_swin_t_noisy_or": {
            **_backbone("mask2former_swin_t"), "img_size": 512, "reduction": "noisy_or",
            "pretrained": "facebook/mask2former-swin-tiny-ade-semantic"},
    }
    cfg = {"backbones": backbones, "methods": {b: {**METHOD, "backbone": b} for b in backbones}}
    rows = params_table(cfg).set_index("method")
    assert rows.loc["segformer_b0_ade", "total"] == 3_714_401  # as segformer_b0
    # 2 class outputs (fg, no-object) instead of 3: one 256-wide row and its bias fewer
    assert rows.loc["mask2former_swin_t_noisy_or", "total"] == 47_403_133 - 257
    assert rows.loc["mask2former_swin_t_noisy_or", "head"] == 198_147 - 257
