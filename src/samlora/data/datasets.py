"""PyTorch dataset over a prepared folder (``index.csv`` + PNGs), and the validation carve-out."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from samlora.data.io import read_image, read_mask
from samlora.data.multilabel import label_column
from samlora.data.geometry import Geometry

log = logging.getLogger(__name__)

AUGMENT_KEYS = ("hflip", "vflip", "rot90", "pipeline", "crop")
#: Separates the augmentation random stream from other uses of the run seed.
AUGMENT_STREAM = 0x4155


def carve_val(cases: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split training cases into (train, val), deterministically.

    The input is sorted first, then a numpy Generator seeded by ``seed`` picks
    ``round(n · fraction)`` validation cases (at least 1 when ``fraction`` > 0 and n ≥ 2,
    at most n − 1).

    Returns:
        (train cases, validation cases), each sorted.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val fraction must lie in [0, 1), got {fraction}")
    ordered = sorted(set(cases))
    n = len(ordered)
    if fraction == 0.0 or n < 2:
        return ordered, []
    n_val = min(max(1, round(n * fraction)), n - 1)
    pick = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    val = [c for i, c in enumerate(ordered) if i in pick]
    train = [c for i, c in enumerate(ordered) if i not in pick]
    return train, val


def select_label(processed_dir: Path, index: pd.DataFrame, label: str | None,
                 explicit: bool) -> tuple[str, pd.DataFrame]:
    """The index column of ``label`` and the rows that have it.

    Args:
        processed_dir: the prepared folder (its ``dataset.json`` maps label kinds to columns).
        index: rows of its index.csv.
        label: a label kind (``disc``, ``cup``), or None for the primary label (``mask``).
        explicit: True when the caller named the cases: then a case without the label is
            an error; otherwise such cases are left out (and counted in the log).

    Raises:
        KeyError: unknown label kind, or named cases without that label.
    """
    if label is None:
        return "mask", index
    info_path = Path(processed_dir) / "dataset.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: prepare the dataset first")
    column = label_column(json.loads(info_path.read_text()), label)
    lacking = index[index[column] == ""] if column in index else index
    if len(lacking) and explicit:
        raise KeyError(f"case(s) {list(lacking['case'])[:5]} have no {label!r} label in "
                       f"{processed_dir}/index.csv")
    if len(lacking):
        log.info("%s: %d of %d case(s) have no %r label and are left out", processed_dir,
                 len(lacking), len(index), label)
    return column, index[index[column] != ""]


def _check_augment(augment: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if augment is None:
        return None
    unknown = sorted(set(augment) - set(AUGMENT_KEYS))
    if unknown:
        raise KeyError(f"unknown augment key(s) {unknown}; known: {list(AUGMENT_KEYS)}")
    aug = {"hflip": float(augment.get("hflip", 0.0)), "vflip": float(augment.get("vflip", 0.0)),
           "rot90": bool(augment.get("rot90", False)),
           "pipeline": str(augment.get("pipeline", "samlora")),
           "crop": None if augment.get("crop") is None else int(augment["crop"])}
    for key in ("hflip", "vflip"):
        if not 0.0 <= aug[key] <= 1.0:
            raise ValueError(f"augment.{key} is a probability, got {aug[key]}")
    return aug


class SegmentationDataset(Dataset):
    """Cases of a prepared dataset as model-ready, square tensors.

    Items are dicts: ``image`` float32 3×S×S in 0..255, ``mask`` float32 1×S×S in {0, 1},
    ``fov`` float32 1×S×S in {0, 1} (ones over the image if the index has none), ``case``
    str, and ints ``orig_h``, ``orig_w``, ``resized_h``, ``resized_w`` (for
    :func:`samlora.data.transforms.unresize`); ``digest`` (SHA-256 of the image file) and
    ``view`` (the geometry and augmentation that made the input, e.g. ``lb256-h1v0r3``;
    ``...-aug`` for a paper's random pipeline) name the model input for the embedding cache
    (:mod:`samlora.training.embed_cache`).
    """

    def __init__(self, processed_dir: Path, cases: Sequence[str] | None = None,
                 split: str | None = None, size: int = 1024,
                 augment: Mapping[str, Any] | None = None, seed: int = 0,
                 cache: bool = True, label: str | None = None, stream: int = 0,
                 geometry: Geometry | None = None) -> None:
        """Read ``processed_dir/index.csv`` and select cases.

        Args:
            processed_dir: a prepared dataset folder.
            cases: case ids to use, in this order; None = all (after ``split``).
            split: keep only this split (``train``/``test``); None = all.
            size: model input side S.
            augment: ``{hflip: p, vflip: p, rot90: bool}`` for training (ours), or
                ``{pipeline: topolora_ref | sam2lora_ref, crop: px}`` for a paper's
                (:mod:`samlora.data.augment`; crop null = the geometry's size, else 384);
                None = no augmentation (validation, test).
            seed: seeds the augmentation draws (with the epoch and the item index).
            cache: keep decoded native images in memory.
            label: the target's label kind (``cup``); None = the dataset's primary label
                (the ``mask`` column). Cases without that label are left out, unless
                ``cases`` names them (then KeyError).
            geometry: how images become S×S inputs (:mod:`samlora.data.geometry`; None =
                letterbox).
            stream: separates the augmentation draws of the members of a union (each
                member's item ``i`` would otherwise draw alike).
        """
        self.root = Path(processed_dir)
        index_path = self.root / "index.csv"
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path} not found: prepare the dataset first")
        index = pd.read_csv(index_path, dtype=str, keep_default_na=False)
        if split is not None:
            index = index[index["split"] == split]
        by_case = index.set_index("case", drop=False)
        if cases is not None:
            unknown = [c for c in cases if c not in by_case.index]
            if unknown:
                raise KeyError(f"case(s) {unknown[:5]} not in {index_path}"
                               + (f" (split {split!r})" if split else ""))
            by_case = by_case.loc[list(cases)]
        self.column, by_case = select_label(self.root, by_case, label, cases is not None)
        self.rows = by_case.to_dict("records")
        self.size = int(size)
        self.augment = _check_augment(augment)
        self.geometry = geometry or Geometry()
        self._pipeline = None
        if self.augment is not None:  # a paper's torchvision pipeline (samlora.data.augment)
            from samlora.data.augment import TOPOLORA_CROP, build

            crop = self.augment["crop"] or self.geometry.size or TOPOLORA_CROP
            self._pipeline = build(self.augment["pipeline"], crop)
        self.seed = int(seed)
        self.stream = int(stream)
        self.epoch = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = \
            {} if cache else None
        self._digests: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def cases(self) -> list[str]:
        """Case ids in item order."""
        return [r["case"] for r in self.rows]

    def _native(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image H×W×3 uint8, mask H×W bool, fov H×W bool) of item ``i``, cached."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        row = self.rows[i]
        image = read_image(self.root / row["image"])
        if row[self.column]:
            mask = read_mask(self.root / row[self.column])
        elif row["split"] == "test":  # shipped unlabelled: predicted (no prompt), not scored
            mask = np.zeros(image.shape[:2], bool)
        else:
            raise ValueError(f"{self.root / 'index.csv'}: {row['split']} case {row['case']} "
                             "has no reference label; only test cases may lack one: prepare "
                             "the dataset again from a release that labels it")
        fov = read_mask(self.root / row["fov"]) if row.get("fov") else \
            np.ones(image.shape[:2], bool)
        if self._cache is not None:
            self._cache[i] = (image, mask, fov)
        return image, mask, fov

    def restricted(self, cases: Sequence[str]) -> "SegmentationDataset":
        """Keep only ``cases`` (in that order) among the items that have the label; the
        dataset itself, for chaining. Cases without the target label are left out."""
        by_case = {r["case"]: r for r in self.rows}
        self.rows = [by_case[c] for c in cases if c in by_case]
        self._digests.clear()
        if self._cache is not None:
            self._cache.clear()
        if len(self.rows) < len(cases):
            log.info("%s: %d of %d case(s) lack the label and are left out", self.root,
                     len(cases) - len(self.rows), len(cases))
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws :meth:`__getitem__` makes.

        Call it before the epoch's DataLoader is created: worker processes take a copy of
        the dataset when the loader's iterator starts.
        """
        self.epoch = int(epoch)

    def sample_rng(self, i: int) -> np.random.Generator:
        """The augmentation RNG of item ``i`` in the current epoch.

        A pure function of (seed, epoch, item index): the draws do not depend on the worker
        count, the batch order or the point a killed run resumed from.
        """
        return np.random.default_rng([AUGMENT_STREAM, self.stream, self.seed, self.epoch,
                                      int(i)])

    def _augmented(self, arrays: tuple[np.ndarray, ...], i: int
                   ) -> tuple[tuple[np.ndarray, ...], str]:
        """Apply the same random flips / rot90 to every H×W(×C) array of item ``i``; the
        arrays and the view's name (``h<0|1>v<0|1>r<k>``)."""
        aug, rng = self.augment or {}, self.sample_rng(i)
        h = rng.random() < aug["hflip"]
        if h:
            arrays = tuple(a[:, ::-1] for a in arrays)
        v = rng.random() < aug["vflip"]
        if v:
            arrays = tuple(a[::-1] for a in arrays)
        k = 0
        if aug["rot90"]:
            k = int(rng.integers(4))
            arrays = tuple(np.rot90(a, k, axes=(0, 1)) for a in arrays)
        return arrays, f"h{int(h)}v{int(v)}r{k}"

    def digest(self, i: int) -> str:
        """SHA-256 of item ``i``'s image file (what its pixels are, whatever its case id)."""
        if i not in self._digests:
            from samlora.utils.io import sha256_file

            self._digests[i] = sha256_file(self.root / self.rows[i]["image"])
        return self._digests[i]

    def __getitem__(self, i: int) -> dict[str, Any]:
        image, mask, fov = self._native(i)
        view = "id"
        if self._pipeline is not None:
            from samlora.data.augment import apply

            seed = int(self.sample_rng(i).integers(2 ** 63))
            image, mask, fov = apply(self._pipeline, image, mask, fov, seed)
            view = "aug"
        elif self.augment is not None:
            (image, mask, fov), view = self._augmented((image, mask, fov), i)
        tensors, meta = self.geometry.apply(image, mask, fov, self.size)
        (h0, w0), (h1, w1) = meta["orig_hw"], meta["resized_hw"]
        return {"image": tensors["image"], "mask": tensors["mask"], "fov": tensors["fov"],
                "case": self.rows[i]["case"], "orig_h": h0, "orig_w": w0,
                "resized_h": h1, "resized_w": w1, "digest": self.digest(i),
                "view": f"{self.geometry.tag}{self.size}-{view}"}

