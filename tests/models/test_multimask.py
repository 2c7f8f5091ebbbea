"""``multimask: first``: SAM2LoRA's code decodes with multimask_output=True and keeps the
first of the three masks; ours decodes one mask. Both SAM and SAM 2 segmenters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.models.registry import build_model


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


def _build(cfg, method: str, backbone: str, multimask: str | None):
    method_cfg = OmegaConf.to_container(cfg.methods[method], resolve=True)
    method_cfg["backbone"] = backbone
    if multimask is not None:
        method_cfg["multimask"] = multimask
    torch.manual_seed(0)
    backbone_cfg = OmegaConf.to_container(cfg.backbones[backbone], resolve=True)
    backbone_cfg["img_size"] = 64 if backbone == "sam_tiny" else 128
    return build_model(method_cfg, backbone_cfg, pretrained=False).eval()


@pytest.mark.parametrize("method, backbone, decoder", [
    ("topolora_sam", "sam_tiny", "mask_decoder"), ("sam2lora", "sam2_tiny", "sam_mask_decoder")])
def test_first_of_three_masks(cfg, method: str, backbone: str, decoder: str) -> None:
    model = _build(cfg, method, backbone, "first")
    single = _build(cfg, method, backbone, None)
    assert model.multimask == "first" and single.multimask == "single"
    single.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, model.img_size, model.img_size)
    calls = []
    dec = model.sam.mask_decoder if decoder == "mask_decoder" else model.sam_mask_decoder
    original = dec.forward

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((kwargs["multimask_output"], out[0].shape[1]))
        return out

    dec.forward = spy
    with torch.no_grad():
        logits, iou = model.forward_with_iou(x, None)
        plain, plain_iou = single.forward_with_iou(x, None)
    assert calls == [(True, 3)]  # three masks decoded, the first kept
    assert logits.shape == plain.shape and iou.shape == plain_iou.shape == (1, 1)
    assert not torch.allclose(logits, plain)  # mask token 1, not the single-mask token 0
    with torch.no_grad():
        low, all_iou = original_three(model, x, decoder)
    assert torch.allclose(iou, all_iou[:, :1])


def original_three(model, x, decoder):
    """The decoder's three masks and IoUs, decoded directly (one image, prompt-free)."""
    feats = model.embed(x)
    if decoder == "mask_decoder":
        pe = model.sam.prompt_encoder
        sparse, dense = pe(points=None, boxes=None, masks=None)
        return model.sam.mask_decoder(image_embeddings=feats, image_pe=pe.get_dense_pe(),
                                      sparse_prompt_embeddings=sparse,
                                      dense_prompt_embeddings=dense, multimask_output=True)
    emb, (s0, s1) = feats
    pe = model.sam_prompt_encoder
    sparse, dense = pe(points=None, boxes=None, masks=None)
    low, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=emb, image_pe=pe.get_dense_pe(), sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense, multimask_output=True, repeat_image=False,
        high_res_features=[s0, s1])
    return low, iou


def test_unknown_multimask_is_named(cfg) -> None:
    with pytest.raises(ValueError, match="method multimask"):
        _build(cfg, "topolora_sam", "sam_tiny", "all")
