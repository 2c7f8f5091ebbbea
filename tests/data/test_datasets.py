"""SegmentationDataset over the prepared DRIVE folder, augmentation, and carve_val."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from samlora.data.datasets import SegmentationDataset, carve_val
from samlora.data.io import read_image, read_mask
from samlora.data.transforms import resize_pad

SIZE = 128


def test_item_shapes_and_dtypes(prepared: dict[str, Path]) -> None:
    ds = SegmentationDataset(prepared["drive"], split="test", size=SIZE)
    assert len(ds) == 20 and ds.cases[0] == "drive_01"
    item = ds[0]
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 255 and item["image"].max() > 100
    for key in ("mask", "fov"):
        assert item[key].shape == (1, SIZE, SIZE) and item[key].dtype == torch.float32
        assert set(item[key].unique().tolist()) == {0.0, 1.0}
    assert item["case"] == "drive_01"
    assert (item["orig_h"], item["orig_w"], item["resized_h"], item["resized_w"]) == \
        (584, 565, SIZE, 124)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["case"] == ["drive_01", "drive_02"]
    assert batch["orig_h"].tolist() == [584, 584]


def test_cases_and_split_selection(prepared: dict[str, Path]) -> None:
    ds = SegmentationDataset(prepared["chase_db1"], cases=["chase_db1_02R", "chase_db1_01L"],
                             size=SIZE)
    assert ds.cases == ["chase_db1_02R", "chase_db1_01L"]
    assert len(SegmentationDataset(prepared["chase_db1"], split="train", size=SIZE)) == 20
    with pytest.raises(KeyError, match="chase_db1_14R"):
        SegmentationDataset(prepared["chase_db1"], cases=["chase_db1_14R"], split="train")
    with pytest.raises(FileNotFoundError, match="index.csv"):
        SegmentationDataset(prepared["chase_db1"] / "nope")


def _native(folder: Path, case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (read_image(folder / f"images/{case}.png"), read_mask(folder / f"masks/{case}.png"),
            read_mask(folder / f"fov/{case}.png"))


def test_no_augment_without_config(prepared: dict[str, Path]) -> None:
    ds = SegmentationDataset(prepared["drive"], cases=["drive_21"], size=SIZE)
    expected, _ = resize_pad(*_native(prepared["drive"], "drive_21"), SIZE)
    for _ in range(3):
        item = ds[0]
        for key in ("image", "mask", "fov"):
            assert torch.equal(item[key], expected[key])


def test_flips_apply_to_image_mask_and_fov(prepared: dict[str, Path]) -> None:
    image, mask, fov = _native(prepared["drive"], "drive_21")
    ds = SegmentationDataset(prepared["drive"], cases=["drive_21"], size=SIZE,
                             augment={"hflip": 1.0, "vflip": 1.0, "rot90": False})
    expected, _ = resize_pad(image[::-1, ::-1].copy(), mask[::-1, ::-1].copy(),
                             fov[::-1, ::-1].copy(), SIZE)
    item = ds[0]
    for key in ("image", "mask", "fov"):
        assert torch.equal(item[key], expected[key]), key


def _dihedral(arrays: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, ...]]:
    """All flip/rot90 variants of ``arrays`` (the same op on each)."""
    out = []
    for h in (False, True):
        for v in (False, True):
            for k in range(4):
                ops = []
                for a in arrays:
                    a = a[:, ::-1] if h else a
                    a = a[::-1] if v else a
                    ops.append(np.ascontiguousarray(np.rot90(a, k, axes=(0, 1))))
                out.append(tuple(ops))
    return out


def test_random_augment_is_seeded_and_same_op_on_all(prepared: dict[str, Path]) -> None:
    aug = {"hflip": 0.5, "vflip": 0.5, "rot90": True}
    a = SegmentationDataset(prepared["drive"], cases=["drive_21"], size=SIZE, augment=aug, seed=3)
    b = SegmentationDataset(prepared["drive"], cases=["drive_21"], size=SIZE, augment=aug, seed=3)
    items = []
    for epoch in range(8):  # each epoch draws anew; the same (seed, epoch, index), the same
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        items.append(a[0])
        assert torch.equal(a[0]["image"], items[-1]["image"])
        assert torch.equal(b[0]["image"], items[-1]["image"])
    assert len({x["image"].numpy().tobytes() for x in items}) > 1
    variants = [resize_pad(*v, SIZE)[0] for v in _dihedral(_native(prepared["drive"], "drive_21"))]
    for item in items:
        match = [v for v in variants if torch.equal(v["image"], item["image"])]
        assert match, "augmented image is not a flip/rotation of the native one"
        assert torch.equal(match[0]["mask"], item["mask"])
        assert torch.equal(match[0]["fov"], item["fov"])
    with pytest.raises(KeyError, match="hfilp"):
        SegmentationDataset(prepared["drive"], augment={"hfilp": 0.5})


def test_carve_val_deterministic() -> None:
    cases = [f"drive_{i}" for i in range(21, 41)]
    train, val = carve_val(cases, 0.2, seed=0)
    assert len(val) == 4 and len(train) == 16 and not set(train) & set(val)
    assert carve_val(list(reversed(cases)), 0.2, seed=0) == (train, val)
    assert carve_val(cases, 0.2, seed=1) != (train, val)
    assert carve_val(["a", "b"], 0.01, seed=0)[1] != []
    assert carve_val(["a"], 0.5, seed=0) == (["a"], [])
    assert carve_val(cases, 0.0, seed=0) == (sorted(cases), [])
    with pytest.raises(ValueError, match="fraction"):
        carve_val(cases, 1.0, seed=0)


def test_augmentation_does_not_depend_on_worker_processes(prepared: dict[str, Path]) -> None:
    """Every sample's draw is a function of (seed, epoch, index): two worker processes and
    the main process give the same augmented batches, epoch after epoch."""
    from torch.utils.data import DataLoader

    aug = {"hflip": 0.5, "vflip": 0.5, "rot90": True}
    cases = [f"drive_{i}" for i in range(21, 27)]
    ds = SegmentationDataset(prepared["drive"], cases=cases, size=SIZE, augment=aug, seed=5)
    seen = {}
    for workers in (0, 2):
        seen[workers] = []
        for epoch in range(2):
            ds.set_epoch(epoch)
            loader = DataLoader(ds, batch_size=2, shuffle=True, num_workers=workers,
                                generator=torch.Generator().manual_seed(epoch))
            seen[workers] += [(b["case"], b["image"], b["mask"]) for b in loader]
    for (c0, i0, m0), (c2, i2, m2) in zip(seen[0], seen[2], strict=True):
        assert c0 == c2 and torch.equal(i0, i2) and torch.equal(m0, m2)
    epoch0, epoch1 = seen[0][:3], seen[0][3:]
    assert any(not torch.equal(x[1], y[1]) for x, y in zip(epoch0, epoch1))
