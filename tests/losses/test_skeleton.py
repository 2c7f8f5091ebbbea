"""Soft morphology and soft skeletons: pool equivalence, known shapes, skimage agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.morphology import skeletonize

from samlora.losses import soft_skeleton
from samlora.losses.morphology import soft_dilate, soft_erode, soft_open


def _erode_pool(x: torch.Tensor) -> torch.Tensor:
    """The paper's reference: min of min-pools 3×1 and 1×3, min-pool = −maxpool(−x)."""
    return torch.minimum(-F.max_pool2d(-x, (3, 1), 1, (1, 0)), -F.max_pool2d(-x, (1, 3), 1, (0, 1)))


def _dilate_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 1, 1)


def _skeleton_pool(x: torch.Tensor, iters: int) -> torch.Tensor:
    """The reference implementation (clDice repository's soft_skel) with max-pools."""
    skel = F.relu(x - _dilate_pool(_erode_pool(x)))
    for _ in range(iters):
        x = _erode_pool(x)
        delta = F.relu(x - _dilate_pool(_erode_pool(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def _image(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32))[None, None]


@pytest.mark.parametrize(
    ("ours", "ref"),
    [(soft_erode, _erode_pool), (soft_dilate, _dilate_pool),
     (lambda x: soft_skeleton(x, 5), lambda x: _skeleton_pool(x, 5))],
)
def test_matches_max_pool_values_and_gradients(ours, ref) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    x = torch.rand(2, 1, 23, 31, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 1, 23, 31, dtype=torch.float64)
    a, b = ours(x), ref(x)
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad((a * w).sum(), x)
    (gb,) = torch.autograd.grad((b * w).sum(), x)
    torch.testing.assert_close(ga, gb)


def test_binary_morphology_known_answers() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[..., 2:7, 2:7] = 1  # 5×5 square
    assert soft_erode(x).sum() == 9 and soft_dilate(x).sum() == 49
    assert torch.equal(soft_open(x), x)
    with torch.no_grad():  # the no-grad path gives the same values
        assert torch.equal(soft_erode(x.requires_grad_()), soft_erode(x.detach()))


@pytest.mark.parametrize("kind", ["horizontal", "vertical", "diagonal"])
def test_skeleton_of_a_one_pixel_line_is_the_line(kind: str) -> None:
    img = np.zeros((32, 32), dtype=np.float32)
    idx = np.arange(4, 28)
    if kind == "horizontal":
        img[15, idx] = 1
    elif kind == "vertical":
        img[idx, 15] = 1
    else:
        img[idx, idx] = 1
    skel = soft_skeleton(_image(img))[0, 0].numpy()
    np.testing.assert_array_equal(skel, img)


def test_skeleton_of_a_thick_bar_is_thin_and_inside() -> None:
    img = np.zeros((40, 64), dtype=np.float32)
    img[16:23, 5:59] = 1  # 7 px wide
    skel = soft_skeleton(_image(img))[0, 0].numpy() > 0.5
    assert skel.any()
    assert not (skel & (img == 0)).any()
    assert skel.sum(axis=0).max() <= 3
    rows = np.nonzero(skel.any(axis=1))[0]
    assert rows.min() >= 18 and rows.max() <= 20  # around the centre line (row 19)
    assert skel[19, 10:54].all()


def test_skeleton_of_drive_vessels_agrees_with_skimage(drive_vessels: np.ndarray) -> None:
    ref = skeletonize(drive_vessels)
    soft = soft_skeleton(_image(drive_vessels), iters=10)[0, 0].numpy()
    assert soft.min() >= 0 and soft.max() <= 1
    ours = soft > 0.5
    near = np.ones((3, 3), dtype=bool)
    assert (ref & ndimage.binary_dilation(ours, near)).sum() / ref.sum() > 0.95
    assert (ours & ndimage.binary_dilation(ref, near)).sum() / ours.sum() > 0.95
    assert not (ours & ~drive_vessels).any()
