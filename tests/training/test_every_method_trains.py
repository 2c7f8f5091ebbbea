"""Every method of params.yaml trains on real DRIVE images (tiny configs) and its loss falls.

Each method keeps its own LoRA / adapter / decoder / loss settings; only its backbone is
swapped for the tiny variant of the same family (SAM, SAM 2) or architecture (baselines).
Training goes through the project's own epoch loop, optimiser, loss builder and (for
prompted methods such as sam2lora) its training-prompt sampler. zero_shot
trains nothing: it must have no trainable parameters instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samlora.config import load_config
from samlora.losses import build_loss
from samlora.models.baselines.nets import get_arch as baseline_arch
from samlora.models.registry import build_model
from samlora.training.loop import train_one_epoch
from samlora.training.optim import build_optimizer, build_scheduler
from samlora.training.prompted import prompt_settings, training_prompts

SIZE = 64  # px; multiple of 16 (SAM), 32 (SAM 2, Mask2Former)
STEPS = 6
LR = 1e-3
CASES = ("21", "22")
#: family -> the params.yaml backbone holding its tiny configuration
TINY_BACKBONE = {"sam": "sam_tiny", "sam2": "sam2_tiny"}
#: default-run subset: one method per backbone family / reduction; the slow test runs all
FAST = ("topolora_sam", "zero_shot", "sam2lora", "mask2former_swin_t")


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


@pytest.fixture(scope="module")
def drive_batch(mirror: Path) -> dict[str, torch.Tensor]:
    """Two DRIVE training images with their vessel masks at SIZE², as the loaders give them."""
    drive = mirror / "DRIVE" / "training"
    images, masks = [], []
    for case in CASES:
        with Image.open(drive / "images" / f"{case}_training.tif") as im:
            rgb = im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
        with Image.open(drive / "1st_manual" / f"{case}_manual1.gif") as im:
            mask = np.asarray(im.convert("L").resize((SIZE, SIZE), Image.BILINEAR)) >= 64
        images.append(torch.from_numpy(np.asarray(rgb, np.float32)).permute(2, 0, 1))
        masks.append(torch.from_numpy(mask.astype(np.float32))[None])
    batch = {"image": torch.stack(images), "mask": torch.stack(masks)}
    assert 0.02 < batch["mask"].mean() < 0.5  # vessels survive the resize
    return batch


def tiny_backbone(cfg, method: str) -> dict:
    """The method's backbone swapped for its tiny variant, random weights, SIZE px."""
    bcfg = dict(cfg.backbones[cfg.methods[method].backbone])
    family = bcfg.get("family", "sam")
    if family == "baseline":
        bcfg.update(arch=baseline_arch(bcfg["arch"]).tiny, pretrained=None)
    elif family in TINY_BACKBONE:
        bcfg = dict(cfg.backbones[TINY_BACKBONE[family]])
    else:
        raise AssertionError(f"method {method}: no tiny variant for backbone family {family!r}")
    bcfg["img_size"] = SIZE
    return bcfg


def _losses(cfg, method: str, batch: dict[str, torch.Tensor]) -> list[float]:
    torch.manual_seed(0)
    mcfg = cfg.methods[method]
    model = build_model(mcfg, tiny_backbone(cfg, method))
    loss_fn = build_loss(mcfg.loss)
    opt = build_optimizer(model.parameters(), LR, 0.0)
    sched = build_scheduler(opt, STEPS, 0, LR, LR)
    rc = {"train": {"grad_accum": 1, "grad_clip": 1.0, "log_every": 1000}}
    prompting = prompt_settings(mcfg)
    return [train_one_epoch(model, [batch], loss_fn, opt, sched, rc, torch.device("cpu"),
                            f"{method} step {i}", training_prompts(prompting, 0, i))
            for i in range(STEPS)]


def _check(cfg, method: str, batch: dict[str, torch.Tensor]) -> None:
    if method in ("zero_shot", "zero_shot_box", "sam2lora_zero_shot"):  # frozen: nothing trains
        model = build_model(cfg.methods[method], tiny_backbone(cfg, method))
        assert not any(p.requires_grad for p in model.parameters())
        return
    losses = _losses(cfg, method, batch)
    assert all(np.isfinite(losses)), (method, losses)
    assert losses[-1] < losses[0] - 1e-3, (method, losses)


@pytest.mark.parametrize("method", FAST)
def test_a_method_of_each_kind_trains(cfg, drive_batch: dict, method: str) -> None:
    assert method in cfg.methods
    _check(cfg, method, drive_batch)


def test_every_method_in_params_trains(cfg, drive_batch: dict) -> None:
    for method in cfg.methods:
        _check(cfg, method, drive_batch)
