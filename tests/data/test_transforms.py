"""resize_pad / unresize: sizes for the real image shapes, padding, and the round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samlora.data.transforms import resize_pad, resized_hw, unresize


@pytest.mark.parametrize(("hw", "size", "expected"), [
    ((584, 565), 1024, (1024, 991)),  # DRIVE
    ((960, 999), 1024, (984, 1024)),  # CHASE_DB1
    ((584, 565), 256, (256, 248)),
    ((960, 999), 256, (246, 256)),
    ((605, 700), 1024, (885, 1024)),  # STARE
])
def test_sizes_for_real_shapes(hw: tuple[int, int], size: int,
                               expected: tuple[int, int]) -> None:
    assert resized_hw(*hw, size) == expected
    image = np.full((*hw, 3), 200, np.uint8)
    mask = np.zeros(hw, bool)
    mask[hw[0] // 3: hw[0] // 2, hw[1] // 4: hw[1] // 2] = True
    tensors, meta = resize_pad(image, mask, np.ones(hw, bool), size)
    h, w = expected
    assert meta == {"orig_hw": hw, "resized_hw": expected}
    assert tensors["image"].shape == (3, size, size) and tensors["image"].dtype == torch.float32
    assert tensors["mask"].shape == tensors["fov"].shape == (1, size, size)
    assert set(tensors["mask"].unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(tensors["image"][:, :h, :w], torch.tensor(200.0))
    assert tensors["image"][:, h:, :].abs().sum() == 0
    assert tensors["image"][:, :, w:].abs().sum() == 0
    assert tensors["fov"][0, :h, :w].all() and tensors["fov"].sum() == h * w
    back = unresize(np.asarray(tensors["fov"][0]), meta)
    assert back.shape == hw and back.dtype == np.float32


@pytest.mark.parametrize(("hw", "size"), [((584, 565), 1024), ((960, 999), 1024),
                                          ((584, 565), 256), ((960, 999), 256)])
def test_round_trip_of_a_smooth_map(hw: tuple[int, int], size: int) -> None:
    yy, xx = np.mgrid[: hw[0], : hw[1]] / max(hw)
    smooth = 0.5 + 0.4 * np.sin(2 * np.pi * xx) * np.cos(3 * np.pi * yy)
    image = np.repeat(np.round(smooth * 255).astype(np.uint8)[..., None], 3, axis=2)
    tensors, meta = resize_pad(image, None, None, size)
    assert tensors["mask"] is None and tensors["fov"] is None
    back = unresize(tensors["image"][0].numpy() / 255.0, meta)
    assert back.shape == hw
    err = np.abs(back - image[..., 0] / 255.0)
    assert err.mean() < 0.005 and err.max() < 0.03


def test_mask_stays_binary_and_in_place() -> None:
    mask = np.zeros((100, 50), bool)
    mask[10:30, 5:20] = True
    tensors, meta = resize_pad(np.zeros((100, 50, 3), np.uint8), mask, None, 200)
    m = tensors["mask"][0].numpy()
    assert set(np.unique(m)) == {0.0, 1.0}
    assert m[20:60, 10:40].all() and m.sum() == 40 * 30
    np.testing.assert_array_equal(unresize(m, meta) > 0.5, mask)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="mask"):
        resize_pad(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 9), bool), None, 32)
    with pytest.raises(ValueError, match="S×S"):
        unresize(np.zeros((1, 32, 32)), {"orig_hw": (10, 10), "resized_hw": (32, 32)})
