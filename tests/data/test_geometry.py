"""A method's geometry: letterbox (ours) or TopoLoRA-SAM's stretch to 384² (512²)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from samlora.data.datasets import SegmentationDataset
from samlora.data.geometry import Geometry, geometry_for, model_backbone
from samlora.data.transforms import resize_pad, unresize

SEGLAB = {"resize": "stretch", "size": 384, "size_by_dataset": {"kvasir_seg": 512}}


def _linear_half_pixel(a: np.ndarray, out: int) -> np.ndarray:
    """OpenCV INTER_LINEAR along axis 0, written from its formula: source coordinate
    (i + 0.5)·n/out − 0.5, clamped to the edges, linear between the two neighbours."""
    n = a.shape[0]
    x = np.clip((np.arange(out) + 0.5) * n / out - 0.5, 0, n - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (x - lo).reshape(-1, *([1] * (a.ndim - 1)))
    return a[lo] * (1 - w) + a[hi] * w


def _nearest(a: np.ndarray, out: int) -> np.ndarray:
    """OpenCV INTER_NEAREST along axis 0: source index floor(i·n/out)."""
    return a[np.floor(np.arange(out) * a.shape[0] / out).astype(int)]


def test_resolution_per_dataset_and_bad_values() -> None:
    assert geometry_for(None, "drive") == Geometry("letterbox", None)
    assert geometry_for(SEGLAB, "drive") == Geometry("stretch", 384)
    assert geometry_for(SEGLAB, "kvasir_seg") == Geometry("stretch", 512)
    assert geometry_for(SEGLAB, None) == Geometry("stretch", 384)
    with pytest.raises(ValueError, match=r"geometry\.resize: 'crop' is not one of"):
        geometry_for({"resize": "crop"}, "drive")
    with pytest.raises(ValueError, match=r"geometry: unknown key\(s\) \['sise'\]"):
        geometry_for({"sise": 3}, "drive")
    with pytest.raises(ValueError, match=r"geometry\.size: expected a positive integer"):
        geometry_for({"resize": "stretch", "size": 0}, "drive")


def test_stretch_known_answer_is_opencv_linear_then_the_model_resize() -> None:
    """A 6×2 image stretched to 4² (pre = model size: one stage) against the formula."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 2, 3)).astype(np.uint8)
    mask = rng.random((6, 2)) > 0.5
    tensors, meta = Geometry("stretch", 4).apply(image, mask, None, 4)
    f = image.astype(np.float64)
    want = _linear_half_pixel(_linear_half_pixel(f, 4).transpose(1, 0, 2), 4).transpose(1, 0, 2)
    got = tensors["image"].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(got, want, atol=1e-3)
    want_mask = _nearest(_nearest(mask, 4).T, 4).T
    np.testing.assert_array_equal(tensors["mask"][0].numpy().astype(bool), want_mask)
    assert meta == {"orig_hw": (6, 2), "resized_hw": (4, 4)} and tensors["fov"] is None


def test_stretch_of_a_real_image_fills_the_square_and_maps_back(mirror: Path) -> None:
    from samlora.data.io import read_image, read_mask

    drive = mirror / "DRIVE" / "training"
    image = read_image(drive / "images" / "21_training.tif")          # 584 × 565
    fov = read_mask(drive / "mask" / "21_training_mask.gif")
    whole = np.ones(fov.shape, bool)
    stretched, meta = Geometry("stretch", 384).apply(image, whole, fov, 256)
    boxed, _ = resize_pad(image, whole, fov, 256)
    # letterbox pads the short side (565 px wide); stretch fills the square
    assert boxed["mask"][0, :, -1].sum() == 0 and bool(stretched["mask"].all())
    assert stretched["image"].shape == (3, 256, 256)
    back = unresize(stretched["fov"][0].numpy(), meta) >= 0.5
    assert back.shape == fov.shape
    assert (back == fov).mean() > 0.99


def test_baselines_run_at_the_geometry_size_sam_keeps_its_own() -> None:
    base = {"family": "baseline", "arch": "unet_resnet34", "img_size": 512}
    method = {"backbone": "unet_r34", "geometry": SEGLAB}
    assert model_backbone(method, base, ("drive",))["img_size"] == 384
    assert model_backbone(method, base, ("kvasir_seg",))["img_size"] == 512
    assert model_backbone({"backbone": "unet_r34"}, base, ("drive",))["img_size"] == 512
    sam = {"family": "sam", "arch": "vit_b", "img_size": 1024}
    assert model_backbone(method, sam, ("drive",))["img_size"] == 1024


def test_the_dataset_applies_the_geometry_and_crops_at_its_size(mirror: Path,
                                                                tmp_path: Path) -> None:
    from samlora.data.prepare import prepare_dataset

    prepare_dataset("drive", mirror / "DRIVE", tmp_path / "drive",
                    {"red_threshold": 0.1, "radius": 3})
    geo = Geometry("stretch", 96)
    plain = SegmentationDataset(tmp_path / "drive", split="train", size=64, geometry=geo)
    item = plain[0]
    assert item["image"].shape == (3, 64, 64) and (item["resized_h"], item["resized_w"]) == (64, 64)
    assert item["image"][:, :, -1].sum() > 0  # no padding column
    aug = SegmentationDataset(tmp_path / "drive", split="train", size=64, geometry=geo,
                              augment={"pipeline": "topolora_ref", "crop": None})
    # crop null follows the geometry size (96 here, 384 for Seglab's retina sets)
    from torchvision.transforms import v2

    crops = [t for t in aug._pipeline.transforms if isinstance(t, v2.RandomCrop)]
    assert crops[0].size == (96, 96)
    assert torch.isfinite(aug[0]["image"]).all()
