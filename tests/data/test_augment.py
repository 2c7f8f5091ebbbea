"""Each paper's training augmentation (torchvision v2): seeded, joint, the right geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from samlora.data.augment import RandomScale, apply, build


@pytest.fixture(scope="module")
def drive_21(mirror: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    root = mirror / "DRIVE" / "training"
    with Image.open(root / "images" / "21_training.tif") as im:
        image = np.asarray(im.convert("RGB"))
    with Image.open(root / "1st_manual" / "21_manual1.gif") as im:
        mask = np.asarray(im.convert("L")) > 127
    with Image.open(root / "mask" / "21_training_mask.gif") as im:
        fov = np.asarray(im.convert("L")) > 127
    return image, mask, fov


@pytest.mark.parametrize("name", ["topolora_ref", "sam2lora_ref"])
def test_seeded_per_sample(drive_21, name: str) -> None:
    pipe = build(name)
    a, b = apply(pipe, *drive_21, seed=5), apply(pipe, *drive_21, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    apply(pipe, *drive_21, seed=6)
    assert torch.equal(torch.rand(1), before)  # the global generator is left as it was
    others = [apply(pipe, *drive_21, seed=s) for s in range(7, 11)]
    assert any(o[0].shape != a[0].shape or not np.array_equal(o[0], a[0]) for o in others)
    for image, mask, fov in [a, *others]:
        assert image.dtype == np.uint8 and mask.dtype == bool and fov.dtype == bool
        assert image.shape[:2] == mask.shape == fov.shape


def test_topolora_ref_crops_384_and_scales_within_its_range(drive_21) -> None:
    shapes = {apply(build("topolora_ref"), *drive_21, seed=s)[0].shape for s in range(6)}
    assert shapes == {(384, 384, 3)}
    scale = RandomScale((0.8, 1.2))
    sizes = set()
    for s in range(50):
        torch.manual_seed(s)
        out = scale(tv_tensors.Image(torch.zeros(3, 100, 50, dtype=torch.uint8)))
        h, w = out.shape[-2:]
        assert 80 <= h <= 120 and abs(w / h - 0.5) < 0.02  # aspect kept, as Albumentations
        sizes.add(int(h))
    assert len(sizes) > 10


def test_sam2lora_ref_output_is_native_or_its_1000_crop(drive_21) -> None:
    shapes = {apply(build("sam2lora_ref"), *drive_21, seed=s)[1].shape for s in range(8)}
    assert shapes <= {(584, 565), (1000, 1000)} and len(shapes) == 2  # RandomApply p 0.5


def test_image_and_masks_move_together(drive_21) -> None:
    """Without the colour step, an image whose red channel is the FOV keeps it aligned with
    the FOV mask (and the vessel mask stays inside it)."""
    image, mask, fov = drive_21
    marked = image.copy()
    marked[..., 0] = fov * 255
    geometric = v2.Compose(build("topolora_ref").transforms[:-1])
    for s in range(4):
        out, m, f = apply(geometric, marked, mask, fov, seed=s)
        red = out[..., 0] > 127
        iou = (red & f).sum() / max(1, (red | f).sum())
        assert iou > 0.98, (s, iou)  # edges differ: bilinear image, nearest mask
        assert (m & ~f).sum() <= 0.01 * max(1, m.sum())


def test_unknown_pipeline_is_named() -> None:
    with pytest.raises(ValueError, match="train.augment.pipeline"):
        build("albumentations")


def test_dataset_draws_the_same_sample_again_and_another_next_epoch(mirror, tmp_path) -> None:
    from samlora.data.datasets import SegmentationDataset
    from tests.evaluation.conftest import build_drive_processed

    processed = build_drive_processed(mirror, tmp_path / "drive")
    ds = SegmentationDataset(processed, split="train", size=256,
                             augment={"pipeline": "topolora_ref", "crop": 384}, seed=3)
    first, again = ds[0], ds[0]
    assert torch.equal(first["image"], again["image"]) and first["image"].shape == (3, 256, 256)
    assert set(first["mask"].unique().tolist()) <= {0.0, 1.0}
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["image"], first["image"])
