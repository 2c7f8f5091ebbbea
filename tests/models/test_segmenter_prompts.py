"""SamSegmenter with prompts: every evaluation mode at batch 2, padding, prompt-free unchanged,
prompted training on DRIVE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samlora.losses import build_loss
from samlora.models.prompts import EVAL_MODES, PromptSpec, case_rng, eval_spec, sample_prompts
from samlora.models.segmenter import SamSegmenter, build_segmenter
from samlora.training.prompted import PromptSettings, model_step, training_prompts


@pytest.fixture
def model(topolora_cfg: dict, tiny_backbone: dict) -> SamSegmenter:
    torch.manual_seed(0)
    return build_segmenter(topolora_cfg, tiny_backbone).eval()


@pytest.fixture
def batch(drive_21: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """Two images: DRIVE 21 with its vessels, and its flipped copy with an empty mask."""
    image, target = drive_21
    return torch.cat([image, image.flip(-1)]), torch.cat([target, torch.zeros_like(target)])


def _reference_prompt_free(model: SamSegmenter, images: torch.Tensor) -> torch.Tensor:
    """Prompt-free decoding written out with segment_anything's modules alone."""
    sam = model.sam
    emb = model.embed(images)
    sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
    lows = [sam.mask_decoder(image_embeddings=e[None], image_pe=sam.prompt_encoder.get_dense_pe(),
                             sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                             multimask_output=False)[0] for e in emb]
    return torch.nn.functional.interpolate(torch.cat(lows), size=images.shape[-2:],
                                           mode="bilinear", align_corners=False)


@torch.no_grad()
def test_prompt_free_output_is_unchanged(model: SamSegmenter, batch: tuple) -> None:
    images, _ = batch
    ref = _reference_prompt_free(model, images)
    assert torch.equal(model(images), ref)
    assert torch.equal(model(images, None), ref)
    logits, iou = model.forward_with_iou(images)
    assert torch.equal(logits, ref) and iou.shape == (2, 1)


@torch.no_grad()
def test_every_mode_at_batch_two(model: SamSegmenter, batch: tuple) -> None:
    images, masks = batch
    free = model(images)
    outputs = {}
    for mode in EVAL_MODES:
        prompts = sample_prompts(masks, eval_spec(mode), [case_rng(0, "a"), case_rng(0, "b")])
        logits, iou = model.forward_with_iou(images, prompts)
        assert logits.shape == (2, 1, 256, 256) and iou.shape == (2, 1), mode
        assert torch.isfinite(logits).all() and torch.isfinite(iou).all(), mode
        # the empty-mask image has only padding: it is decoded prompt-free
        assert torch.equal(logits[1], free[1]), mode
        outputs[mode] = logits[0]
    for mode in EVAL_MODES:
        if mode != "none":
            assert not torch.allclose(outputs[mode], outputs["none"]), mode
    assert not torch.allclose(outputs["1pt"], outputs["5pt"])
    assert not torch.allclose(outputs["box"], outputs["pts_box"])


@torch.no_grad()
def test_padding_does_not_change_an_image_result(model: SamSegmenter, batch: tuple) -> None:
    images, masks = batch
    masks = masks.clone()
    masks[1, 0, 100:110, 100:110] = 1  # tiny object: fewer negative candidates, same counts
    prompts = sample_prompts(masks, PromptSpec(positive=3, negative=1, box=True),
                             np.random.default_rng(0))
    prompts["point_labels"][1, 1:] = -1  # image 1 keeps 1 point: padded to 4
    together = model(images, prompts)
    for i in range(2):
        single = {k: v[i:i + 1] for k, v in prompts.items()}
        single["points"] = single["points"][:, prompts["point_labels"][i] != -1]
        single["point_labels"] = single["point_labels"][:, prompts["point_labels"][i] != -1]
        torch.testing.assert_close(together[i:i + 1], model(images[i:i + 1], single),
                                   rtol=1e-4, atol=1e-4)


def test_iou_head_gets_gradients_on_the_prompted_path(model: SamSegmenter,
                                                     batch: tuple) -> None:
    images, masks = batch
    model.train()
    prompts = sample_prompts(masks, PromptSpec(positive=2), np.random.default_rng(0))
    _, iou = model.forward_with_iou(images, prompts)
    iou.sum().backward()
    head = [p for n, p in model.named_parameters() if "iou_prediction_head" in n]
    assert head and all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)


def test_wrongly_shaped_prompts_are_rejected(model: SamSegmenter, batch: tuple) -> None:
    images, masks = batch
    prompts = sample_prompts(masks[:1], PromptSpec(positive=1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="points"):
        model(images, prompts)


def _drive_case(mirror: Path, num: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """DRIVE training case ``num`` at size²: 1×3×S×S image, 1×1×S×S vessel mask."""
    drive = mirror / "DRIVE" / "training"
    with Image.open(drive / "images" / f"{num}_training.tif") as im:
        rgb = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
    with Image.open(drive / "1st_manual" / f"{num}_manual1.gif") as im:
        mask = np.asarray(im.convert("L").resize((size, size), Image.NEAREST)) >= 128
    return (torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous(),
            torch.from_numpy(mask.astype(np.float32))[None, None])


def test_prompted_training_on_drive_reduces_the_loss(topolora_cfg: dict, tiny_backbone: dict,
                                                     mirror: Path) -> None:
    cases = [_drive_case(mirror, n, 128) for n in (21, 22)]
    batch = {"image": torch.cat([c[0] for c in cases]), "mask": torch.cat([c[1] for c in cases])}
    loss_cfg = {"bce": 1.0, "dice": 1.0, "dice_over": "batch", "focal_tversky": 1.0,
                "cldice": 0.0, "iou_l1": 0.1}
    torch.manual_seed(0)
    model = build_segmenter({**topolora_cfg, "loss": loss_cfg}, {**tiny_backbone, "img_size": 128})
    loss_fn = build_loss(loss_cfg)
    sampler = training_prompts(PromptSettings(train_points=5), seed=0, epoch=0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses, ious = [], []
    for _ in range(10):
        loss, terms, _ = model_step(model, batch, loss_fn, torch.device("cpu"), sampler)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(terms["loss"])
        ious.append(terms["iou_l1"])
    assert set(terms) == {"bce", "dice", "focal_tversky", "iou_l1", "loss"}
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
    assert sum(ious[-3:]) < sum(ious[:3]), ious
