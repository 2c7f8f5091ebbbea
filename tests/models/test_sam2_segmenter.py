"""Sam2Segmenter: sam2's own predictor agrees, high-res features, prompts, no memory modules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from samlora.config import load_config
from samlora.losses import build_loss
from samlora.models.prompts import PromptSpec, sample_prompts
from samlora.models.registry import build_model
from samlora.models.sam2_build import build_sam2_base, import_sam2
from samlora.models.sam2_segmenter import Sam2Segmenter
from samlora.models.segmenter import (
    count_parameters,
    load_trainable_state_dict,
    trainable_state_dict,
)

TINY: dict[str, Any] = {"family": "sam2", "arch": "tiny", "img_size": 256, "checkpoint": None}


@pytest.fixture(scope="module")
def sam2lora(repo_root: Path) -> dict[str, Any]:
    """``methods.sam2lora`` exactly as params.yaml has it (its backbone is swapped for TINY)."""
    cfg = load_config([repo_root / "params.yaml"])
    return OmegaConf.to_container(cfg.methods.sam2lora, resolve=True)


def _image(seed: int = 0, size: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _as_input(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float()


@pytest.fixture
def tiny_pair() -> tuple[torch.nn.Module, Sam2Segmenter]:
    """A random tiny SAM2Base and a segmenter holding its (shared) modules."""
    torch.manual_seed(0)
    base = build_sam2_base("tiny", 256)
    return base, Sam2Segmenter(base).eval()


def _predictor(base: torch.nn.Module, img: np.ndarray) -> Any:
    """sam2's own ``SAM2ImagePredictor`` on ``base`` with ``img`` set (feature sizes of S)."""
    pred = import_sam2("sam2.sam2_image_predictor").SAM2ImagePredictor(base)
    s = base.image_size
    pred._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    pred.set_image(img)
    return pred


@pytest.mark.parametrize("with_points", [False, True])
def test_matches_sam2_image_predictor(tiny_pair: tuple, with_points: bool) -> None:
    """Same logits as sam2's own single-image path (no_mem_embed + high-res features)."""
    base, seg = tiny_pair
    img = _image()
    pts = np.array([[40.0, 200.0], [128.0, 64.0]], np.float32)
    lab = np.array([1, 0])
    kwargs = {"point_coords": pts, "point_labels": lab} if with_points else {}
    with torch.no_grad():
        _, ref_iou, ref_low = _predictor(base, img).predict(
            multimask_output=False, return_logits=True, **kwargs)
        prompts = None
        if with_points:
            prompts = {"points": torch.from_numpy(pts)[None],
                       "point_labels": torch.from_numpy(lab)[None], "boxes": None}
        low, iou = seg.decode_with_iou(seg.embed(_as_input(img)), prompts)
    np.testing.assert_allclose(low[0].numpy(), ref_low, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(iou[0].numpy(), ref_iou, rtol=1e-4, atol=1e-5)


def test_high_res_features_reach_the_output(tiny_pair: tuple) -> None:
    _, seg = tiny_pair
    x = _as_input(_image(1))
    with torch.no_grad():
        before = seg(x)
        seg.sam_mask_decoder.conv_s0.weight.mul_(3.0)  # stride-4 projection only
        after = seg(x)
    assert before.shape == (1, 1, 256, 256)
    assert (after - before).abs().max() > 1e-3


def test_forward_shapes_input_check_and_batching(tiny_pair: tuple) -> None:
    _, seg = tiny_pair
    x = torch.from_numpy(np.stack([_image(i) for i in range(3)])).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        logits, iou = seg.forward_with_iou(x)
        single = torch.cat([seg(x[i:i + 1]) for i in range(3)])
    assert logits.shape == (3, 1, 256, 256) and iou.shape == (3, 1)
    torch.testing.assert_close(logits, single, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="256"):
        seg(torch.rand(1, 3, 128, 128))


def test_prompts_at_batch_size_two(tiny_pair: tuple) -> None:
    """Image 0: two points + box; image 1: one point (padded) and no box (NaN row)."""
    _, seg = tiny_pair
    x = torch.from_numpy(np.stack([_image(5), _image(6)])).permute(0, 3, 1, 2).float()
    prompts = {
        "points": torch.tensor([[[30.0, 40.0], [100.0, 90.0]], [[200.0, 20.0], [0.0, 0.0]]]),
        "point_labels": torch.tensor([[1, 0], [1, -1]]),
        "boxes": torch.tensor([[10.0, 10.0, 120.0, 140.0], [float("nan")] * 4]),
    }
    with torch.no_grad():
        both, iou = seg.forward_with_iou(x, prompts)
        second = seg(x[1:], {"points": prompts["points"][1:, :1],
                             "point_labels": prompts["point_labels"][1:, :1], "boxes": None})
        free = seg(x)
    assert both.shape == (2, 1, 256, 256) and iou.shape == (2, 1)
    assert torch.isfinite(both).all()
    torch.testing.assert_close(both[1:], second, rtol=1e-4, atol=1e-4)
    assert (both - free).abs().amax(dim=(1, 2, 3)).min() > 1e-4  # prompts change each image
    with pytest.raises(ValueError, match="points"):
        seg(x, {"points": torch.zeros(3, 1, 2), "point_labels": torch.ones(3, 1),
                "boxes": None})


def test_holds_no_memory_modules(sam2lora: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build_model(sam2lora, TINY)
    children = {n for n, _ in model.named_children()}
    assert children == {"image_encoder", "sam_prompt_encoder", "sam_mask_decoder"}
    names = {n for n, _ in model.named_parameters()}
    assert "no_mem_embed" in names
    assert not [n for n in names if n.startswith(("memory_", "obj_ptr", "maskmem",
                                                  "mask_downsample", "no_obj"))]
    full = sum(p.numel() for p in build_sam2_base("tiny", 256).parameters())
    c = count_parameters(model)
    held = sum(p.numel() for p in model.parameters())
    assert c["unused"] > 0 and held + c["unused"] == full + c["lora"]


def test_adapter_full_ft_and_trainable_round_trip(sam2lora: dict[str, Any]) -> None:
    torch.manual_seed(0)
    method = {**sam2lora, "adapter": {"hidden": 16}, "decoder": "train"}
    model = build_model(method, TINY)
    c = count_parameters(model)
    assert c["lora"] > 0 and c["adapter"] > 0 and c["decoder"] > 0
    assert c["trainable"] == c["lora"] + c["adapter"] + c["decoder"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".lora_" in n or n.startswith(("adapter.", "sam_mask_decoder."))
               for n in trainable)
    with torch.no_grad():  # as if trained: move every trainable weight
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    sd = trainable_state_dict(model)
    torch.manual_seed(0)  # the same frozen base, fresh trainable weights
    other = build_model(method, TINY)
    x = _as_input(_image(2))
    with torch.no_grad():
        assert (other.eval()(x) - model.eval()(x)).abs().max() > 1e-3
        load_trainable_state_dict(other, sd)
        torch.testing.assert_close(other(x), model(x))
    full = build_model({**method, "lora": None, "adapter": None, "encoder": "train"}, TINY)
    assert all(p.requires_grad for p in full.parameters())


def test_sam2lora_trains_on_drive(drive_21: tuple[torch.Tensor, torch.Tensor],
                                  sam2lora: dict[str, Any]) -> None:
    """params.yaml's sam2lora (LoRA only; BCE + batch Dice + FocalTversky, and the IoU L1 term
    with ground-truth point prompts when configured) lowers its loss on a real DRIVE image."""
    image, target = drive_21
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(sam2lora), TINY)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n, p in model.named_parameters()
                             if p.requires_grad)
    loss_fn = build_loss(sam2lora["loss"])
    assert {"bce", "dice", "focal_tversky"} <= set(loss_fn.weights)
    prompts = None
    if loss_fn.needs_iou:  # the prompted path: N positives from the eroded mask, fixed here
        n = int(sam2lora["prompts"]["train_points"])
        prompts = sample_prompts(target, PromptSpec(positive=n), np.random.default_rng(0))
    opt = torch.optim.AdamW(trainable, lr=2e-2)
    losses = []
    for _ in range(5):
        logits, iou = model.forward_with_iou(image, prompts)
        loss, _ = loss_fn(logits, target, pred_iou=iou)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] == min(losses) and losses[-1] < losses[0] - 0.03, losses
