"""SamSegmenter with prompts: segment_anything's own SamPredictor agrees (prompt-free and every
evaluation mode at batch 2), padding, prompted training on DRIVE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from segment_anything.predictor import SamPredictor

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


def _trained(method_cfg: dict, backbone: dict) -> SamSegmenter:
    """A segmenter whose LoRA factors, adapter and decoder have moved off their init (LoRA B
    and the adapter's last conv start at zero, which would make both the identity)."""
    torch.manual_seed(0)
    model = build_segmenter(method_cfg, backbone)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _sam_predictor(model: SamSegmenter, image: torch.Tensor) -> SamPredictor:
    """segment_anything's own predictor on ``model.sam`` with one ``1×3×S×S`` image set.

    The image goes in as the HWC uint8 RGB array a user would pass (the fixture images hold
    whole numbers, so nothing is lost); at S px ``ResizeLongestSide`` and the padding are
    no-ops. The segmenter's spatial adapter sits outside ``Sam``: when there is one, it is
    applied to the predictor's image embedding before decoding.
    """
    pred = SamPredictor(model.sam)
    rgb = image[0].permute(1, 2, 0).numpy()
    assert np.array_equal(rgb, np.round(rgb)) and rgb.min() >= 0 and rgb.max() <= 255
    pred.set_image(rgb.astype(np.uint8), image_format="RGB")
    if model.adapter is not None:
        pred.features = model.adapter(pred.features)
    return pred


def _predict(pred: SamPredictor, points: torch.Tensor | None = None,
             labels: torch.Tensor | None = None, box: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-size logits (1×S×S) and predicted IoU (1) of ``SamPredictor.predict``."""
    masks, iou, _ = pred.predict(
        point_coords=None if points is None else points.numpy(),
        point_labels=None if labels is None else labels.numpy(),
        box=None if box is None else box.numpy(),
        multimask_output=False, return_logits=True)
    return torch.from_numpy(masks), torch.from_numpy(iou)


ORACLE_METHODS = {
    "lora": {"adapter": None},  # everything inside Sam: the predictor alone is the oracle
    "lora_adapter": {},  # topolora_sam as configured: LoRA + spatial adapter
}


@pytest.mark.parametrize("variant", sorted(ORACLE_METHODS))
@torch.no_grad()
def test_prompt_free_output_matches_sam_predictor(variant: str, topolora_cfg: dict,
                                                  tiny_backbone: dict, batch: tuple) -> None:
    """Prompt-free logits and IoU of a two-image batch equal those of segment_anything's
    SamPredictor on each image alone, unprompted (multimask_output=False, return_logits=True)."""
    model = _trained({**topolora_cfg, **ORACLE_METHODS[variant]}, tiny_backbone)
    images, _ = batch
    refs = [_predict(_sam_predictor(model, images[i:i + 1])) for i in range(2)]
    ref_logits = torch.stack([r[0] for r in refs])
    ref_iou = torch.stack([r[1] for r in refs])
    assert ref_logits.shape == (2, 1, 256, 256) and ref_iou.shape == (2, 1)
    logits, iou = model.forward_with_iou(images)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(iou, ref_iou, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(images), ref_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(images, None), ref_logits, rtol=1e-5, atol=1e-5)
    assert (ref_logits[0] - ref_logits[1]).abs().max() > 1e-3  # the two images differ


@pytest.mark.parametrize("variant", sorted(ORACLE_METHODS))
@torch.no_grad()
def test_prompted_output_matches_sam_predictor(variant: str, topolora_cfg: dict,
                                               tiny_backbone: dict, batch: tuple) -> None:
    """Every evaluation mode at batch 2 equals SamPredictor fed each image's own points
    (x, y in input px, padding dropped) and box; the empty-mask image gets no prompt."""
    model = _trained({**topolora_cfg, **ORACLE_METHODS[variant]}, tiny_backbone)
    images, masks = batch
    preds = [_sam_predictor(model, images[i:i + 1]) for i in range(2)]
    free = _predict(preds[0])[0]
    for mode in EVAL_MODES:
        prompts = sample_prompts(masks, eval_spec(mode), [case_rng(0, "a"), case_rng(0, "b")])
        logits, iou = model.forward_with_iou(images, prompts)
        for i, pred in enumerate(preds):
            kwargs = {}
            if prompts is not None:
                real = prompts["point_labels"][i] != -1
                if real.any():
                    kwargs = {"points": prompts["points"][i][real],
                              "labels": prompts["point_labels"][i][real]}
                if prompts["boxes"] is not None and torch.isfinite(prompts["boxes"][i]).all():
                    kwargs["box"] = prompts["boxes"][i]
            if i == 1:
                assert not kwargs, mode  # image 1's mask is empty: nothing to prompt with
            ref_logits, ref_iou = _predict(pred, **kwargs)
            torch.testing.assert_close(logits[i], ref_logits, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f"{mode}, image {i}: {m}")
            torch.testing.assert_close(iou[i], ref_iou, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f"{mode}, image {i}: {m}")
        if mode != "none":
            assert (logits[0] - free).abs().max() > 1e-3, mode  # the prompts mattered


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
