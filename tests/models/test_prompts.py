"""Prompt sampling from ground-truth masks: seeds, where points fall, boxes, batch padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.morphology import disk, erosion

from samlora.models.prompts import (
    EVAL_MODES,
    PromptSpec,
    case_rng,
    check_prompts,
    eval_spec,
    image_prompts,
    sample_prompts,
)


def _rect(size: int = 64, rows: tuple[int, int] = (10, 20),
          cols: tuple[int, int] = (30, 50)) -> torch.Tensor:
    m = torch.zeros(1, 1, size, size)
    m[..., rows[0]:rows[1], cols[0]:cols[1]] = 1
    return m


def _xy_in(mask: np.ndarray, points: torch.Tensor) -> np.ndarray:
    """mask[y, x] for each (x, y) row of ``points``."""
    xy = points.long().numpy()
    return mask[xy[:, 1], xy[:, 0]]


def test_same_seed_same_prompts_other_seed_other(drive_21: tuple) -> None:
    _, target = drive_21
    spec = PromptSpec(positive=3)
    a = sample_prompts(target, spec, np.random.default_rng(7))
    b = sample_prompts(target, spec, np.random.default_rng(7))
    c = sample_prompts(target, spec, np.random.default_rng(8))
    assert torch.equal(a["points"], b["points"]) and torch.equal(a["point_labels"],
                                                                 b["point_labels"])
    assert not torch.equal(a["points"], c["points"])


def test_positives_lie_in_the_eroded_vessels(drive_21: tuple) -> None:
    _, target = drive_21
    mask = target[0, 0].numpy() > 0.5
    inner = erosion(mask, disk(1))
    assert inner.any() and inner.sum() < mask.sum()
    p = sample_prompts(target, PromptSpec(positive=50), np.random.default_rng(0))
    assert p["points"].shape == (1, 50, 2) and (p["point_labels"] == 1).all()
    assert _xy_in(inner, p["points"][0]).all()
    assert p["boxes"] is None


def test_thin_structure_falls_back_to_the_mask() -> None:
    line = torch.zeros(1, 1, 32, 32)
    line[0, 0, 16, 4:28] = 1  # 1 px wide: a disk(1) erosion removes all of it
    p = sample_prompts(line, PromptSpec(positive=4), np.random.default_rng(0))
    assert (p["points"][0, :, 1] == 16).all()
    assert ((p["points"][0, :, 0] >= 4) & (p["points"][0, :, 0] < 28)).all()


def test_negatives_outside_mask_inside_fov(drive_21: tuple) -> None:
    _, target = drive_21
    fov = torch.zeros_like(target)
    fov[..., 40:216, 40:216] = 1
    p = sample_prompts(target, PromptSpec(positive=2, negative=40), np.random.default_rng(3),
                       fovs=fov)
    labels = p["point_labels"][0]
    assert labels.tolist() == [1, 1] + [0] * 40
    neg = p["points"][0][labels == 0]
    assert not _xy_in(target[0, 0].numpy() > 0.5, neg).any()
    assert _xy_in(fov[0, 0].numpy() > 0.5, neg).all()


def test_box_is_the_tight_bounding_box() -> None:
    p = sample_prompts(_rect(), eval_spec("box"), np.random.default_rng(0))
    assert p["boxes"].tolist() == [[30.0, 10.0, 49.0, 19.0]]  # x0, y0, x1, y1 inclusive
    assert p["points"].shape == (1, 0, 2)
    both = sample_prompts(_rect(), eval_spec("pts_box"), np.random.default_rng(0))
    assert both["boxes"].tolist() == [[30.0, 10.0, 49.0, 19.0]]
    assert both["point_labels"].tolist() == [[1] * 5]


def test_padding_at_batch_size_two() -> None:
    masks = torch.cat([_rect(), torch.zeros(1, 1, 64, 64)])
    p = sample_prompts(masks, eval_spec("5pt1neg"), [case_rng(0, "a"), case_rng(0, "b")])
    check_prompts(p, 2)
    assert p["points"].shape == (2, 6, 2)
    assert p["point_labels"].tolist() == [[1, 1, 1, 1, 1, 0], [-1] * 6]
    box = sample_prompts(masks, eval_spec("box"), np.random.default_rng(0))["boxes"]
    assert torch.isfinite(box[0]).all() and torch.isnan(box[1]).all()
    pts, b = image_prompts(p, 1)
    assert pts is None and b is None
    pts, b = image_prompts(p, 0)
    assert pts[0].shape == (1, 6, 2) and pts[1].tolist() == [[1, 1, 1, 1, 1, 0]] and b is None


def test_modes_nest_with_a_fresh_case_generator() -> None:
    masks = _rect()
    pts = {m: sample_prompts(masks, eval_spec(m), [case_rng(5, "drive_01")])
           for m in EVAL_MODES if m != "none"}
    five = pts["5pt"]["points"][0]
    assert torch.equal(pts["1pt"]["points"][0], five[:1])
    assert torch.equal(pts["2pt"]["points"][0], five[:2])
    assert torch.equal(pts["5pt1neg"]["points"][0, :5], five)
    assert torch.equal(pts["pts_box"]["points"][0], five)
    assert sample_prompts(masks, eval_spec("none"), [case_rng(5, "x")]) is None


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="unknown prompt mode 'lasso'"):
        eval_spec("lasso")
    with pytest.raises(ValueError, match="masks must be"):
        sample_prompts(torch.zeros(64, 64), PromptSpec(positive=1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="2 generators for 1 masks"):
        sample_prompts(_rect(), PromptSpec(positive=1), [case_rng(0, "a"), case_rng(0, "b")])
    good = sample_prompts(_rect(), PromptSpec(positive=1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="points"):
        check_prompts(good, 2)
    with pytest.raises(ValueError, match="lack"):
        check_prompts({"points": good["points"]}, 1)


def test_density_sampling_follows_the_reference_region() -> None:
    """SAM2LoRA's density region of a square at rows/cols 10..49. With OpenCV's anchors the
    2×2 erosion keeps y where y-1 and y are inside (11..49), the 15×15 one y where y-7..y+7
    are (18..42); points come only from there."""
    from samlora.models.prompts import density_candidates, eval_spec, sample_prompts

    mask = np.zeros((64, 64), bool)
    mask[10:50, 10:50] = True
    cands = density_candidates(mask, 5)
    rows, cols = cands[:, 0], cands[:, 1]
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (18, 42, 18, 42)
    prompts = sample_prompts(torch.from_numpy(mask)[None, None].float(), eval_spec("5pt"),
                             np.random.default_rng(0), sampling="density")
    xy = prompts["points"][0].numpy().astype(int)
    assert ((xy >= 18) & (xy <= 42)).all()
    # a thin vessel: the 15×15 erosion is empty, so (as the reference code does) every
    # pixel of the image qualifies, background included
    thin = np.zeros((64, 64), bool)
    thin[30:33, 5:60] = True
    assert len(density_candidates(thin, 5)) == 64 * 64
    with pytest.raises(ValueError, match="prompts.sampling"):
        sample_prompts(torch.from_numpy(mask)[None, None].float(), eval_spec("1pt"),
                       np.random.default_rng(0), sampling="dense")


def test_a_method_chooses_its_point_sampling() -> None:
    from samlora.training.prompted import prompt_settings

    assert prompt_settings({"prompts": {"train_points": 2}}).sampling == "uniform"
    assert prompt_settings({"prompts": {"sampling": "density"}}).sampling == "density"


# --- SAM2LoRA's training sampler: with replacement, 2×2 square erosion -------------------


def test_replacement_draws_every_point_and_repeats() -> None:
    from samlora.models.prompts import erode_square2

    small = _rect(size=32, rows=(10, 14), cols=(10, 14))   # 16 px, 9 after a 2×2 erosion
    inner = erode_square2(small[0, 0].numpy() > 0.5)
    assert inner.sum() == 9
    spec = PromptSpec(positive=200)
    p = sample_prompts(small, spec, np.random.default_rng(0), replacement=True,
                       erode="square2")
    assert p["points"].shape == (1, 200, 2) and (p["point_labels"] == 1).all()
    assert len(torch.unique(p["points"][0], dim=0)) <= 9   # 200 points: duplicates
    assert _xy_in(inner, p["points"][0]).all()
    # with enough candidates, replacement=True still repeats points (as the reference)
    big = sample_prompts(_rect(), PromptSpec(positive=150), np.random.default_rng(1),
                         replacement=True, erode_radius=0)
    assert len(torch.unique(big["points"][0], dim=0)) < 150   # among 200 candidates
    without = sample_prompts(_rect(), PromptSpec(positive=150), np.random.default_rng(1),
                             erode_radius=0)
    assert len(torch.unique(without["points"][0], dim=0)) == 150


def test_square2_erosion_is_opencv_anchor_one_one() -> None:
    """cv2.erode(m, np.ones((2, 2))) with its default anchor (kernel centre, index 1):
    a pixel stays iff it and its up, left and up-left neighbours are on; outside the image
    counts as on. Checked by hand and against scipy's binary_erosion (default origin)."""
    from scipy.ndimage import binary_erosion

    from samlora.models.prompts import erode_square2

    block = np.zeros((8, 8), bool)
    block[3:5, 3:5] = True
    assert np.argwhere(erode_square2(block)).tolist() == [[4, 4]]
    corner = np.ones((4, 4), bool)
    corner[0, 0] = False
    assert erode_square2(corner).astype(int).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1],
                                                          [1, 1, 1, 1], [1, 1, 1, 1]]
    rng = np.random.default_rng(0)
    for _ in range(5):
        m = rng.random((20, 17)) < 0.7
        up = np.pad(m, ((1, 0), (1, 0)), constant_values=True)
        by_hand = up[1:, 1:] & up[:-1, 1:] & up[1:, :-1] & up[:-1, :-1]
        assert np.array_equal(erode_square2(m), by_hand)
        assert np.array_equal(erode_square2(m),
                              binary_erosion(m, np.ones((2, 2), bool), border_value=1))


def test_square2_points_lie_in_the_square_eroded_mask(drive_21: tuple) -> None:
    from samlora.models.prompts import erode_square2

    _, target = drive_21
    mask = target[0, 0].numpy() > 0.5
    inner = erode_square2(mask)
    assert inner.any() and inner.sum() < mask.sum()
    assert not np.array_equal(inner, erosion(mask, disk(1)))
    p = sample_prompts(target, PromptSpec(positive=200), np.random.default_rng(0),
                       erode="square2", replacement=True)
    assert p["points"].shape == (1, 200, 2)
    assert _xy_in(inner, p["points"][0]).all()
    # a line 1 px tall is erased by the 2×2 erosion: fall back to the mask, as with a disk
    line = torch.zeros(1, 1, 32, 32)
    line[0, 0, 16, 4:28] = 1
    q = sample_prompts(line, PromptSpec(positive=4), np.random.default_rng(0), erode="square2")
    assert (q["points"][0, :, 1] == 16).all()


def test_explicit_defaults_give_todays_points(drive_21: tuple) -> None:
    _, target = drive_21
    masks = torch.cat([target, _rect(256)])
    for spec in (PromptSpec(positive=3), PromptSpec(positive=200), eval_spec("5pt1neg")):
        today = sample_prompts(masks, spec, np.random.default_rng(11))
        explicit = sample_prompts(masks, spec, np.random.default_rng(11), erode_radius=1,
                                  sampling="uniform", replacement=False, erode="disk")
        for key in ("points", "point_labels"):
            assert torch.equal(today[key], explicit[key])
    other = sample_prompts(masks, PromptSpec(positive=3), np.random.default_rng(11),
                           replacement=True)
    assert not torch.equal(other["points"], today["points"])


def test_bad_replacement_and_erode_are_named() -> None:
    with pytest.raises(ValueError, match=r"prompts\.erode"):
        sample_prompts(_rect(), PromptSpec(positive=1), np.random.default_rng(0), erode="box")
    with pytest.raises(ValueError, match=r"prompts\.replacement"):
        sample_prompts(_rect(), PromptSpec(positive=1), np.random.default_rng(0),
                       replacement="yes")
