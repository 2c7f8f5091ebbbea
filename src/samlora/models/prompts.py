"""Point and box prompts sampled from ground-truth masks, in one batched format.

**The batched prompt format** (what every segmenter's ``forward(images, prompts)`` takes):
a dict with

- ``points``: ``B×N×2`` float32, (x, y) in model-input pixels (x = column, y = row of the
  ``S×S`` input; the pixel's centre is added by the prompt encoder, as segment_anything does);
- ``point_labels``: ``B×N`` int64, 1 = positive (on the object), 0 = negative (background),
  -1 = padding. Images in one batch may hold different numbers of points; the shorter ones
  are padded with label -1 at (0, 0). ``N`` may be 0 (no image has a point);
- ``boxes``: ``B×4`` float32 (x0, y0, x1, y1), inclusive pixel corners of the box in
  model-input pixels, or None when no image of the batch has a box. A row of NaN means
  "this image has no box" (its mask was empty).

``prompts=None`` means prompt-free decoding for the whole batch. A segmenter reads the
prompts of image ``i`` with :func:`image_prompts`, which drops the padding and the NaN box,
and decodes one image at a time; so batching never changes an image's result, and an image
left with no point and no box is decoded prompt-free.

**Sampling.** Positive points are drawn uniformly, without replacement when there are enough
candidates, from the mask eroded by a disk of ``erode_radius`` px (scikit-image); when the
erosion leaves nothing (thin vessels) they are drawn from the mask itself. Two switches give
SAM2LoRA's training sampler instead (both off by default): ``replacement=True`` draws the
positives with replacement whatever the number of candidates, and ``erode="square2"``
erodes by a 2×2 square instead of the disk (:func:`erode_square2`). Negative points are
drawn from outside the mask and, where a field-of-view mask is given, inside it. A box is the
tight bounding box of the (not eroded) mask. An empty mask gets no point and no box: only
padding. All draws come from a seeded ``numpy.random.Generator``; positives are drawn
:data:`MIN_POSITIVE_DRAWS` at a time and the first ones kept, so with a fresh generator
seeded the same way the ``1pt`` point is the first ``2pt`` point, and so on.

Evaluation modes (:data:`EVAL_MODES`): ``none``; ``1pt``, ``2pt``, ``5pt`` positive points;
``5pt1neg`` = 5 positives + 1 negative; ``box``; ``pts_box`` = the 5 positives + the box.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from skimage.morphology import disk, erosion

Prompts = dict[str, torch.Tensor | None]

#: Positive points are drawn this many at a time (then the first ones kept): nested modes.
MIN_POSITIVE_DRAWS = 5
#: Padding label: segment_anything's prompt encoder reads -1 as "not a point".
PAD_LABEL = -1


@dataclass(frozen=True)
class PromptSpec:
    """What to sample for one image.

    Attributes:
        positive: number of positive points.
        negative: number of negative points.
        box: whether to add the mask's bounding box.
    """

    positive: int = 0
    negative: int = 0
    box: bool = False

    @property
    def empty(self) -> bool:
        """True when the spec asks for nothing (prompt-free decoding)."""
        return self.positive == 0 and self.negative == 0 and not self.box


EVAL_MODES: dict[str, PromptSpec] = {
    "none": PromptSpec(),
    "1pt": PromptSpec(positive=1),
    "2pt": PromptSpec(positive=2),
    "5pt": PromptSpec(positive=5),
    "5pt1neg": PromptSpec(positive=5, negative=1),
    "box": PromptSpec(box=True),
    "pts_box": PromptSpec(positive=5, box=True),
}


def eval_spec(mode: str) -> PromptSpec:
    """The :class:`PromptSpec` of an evaluation mode; ValueError naming the known modes."""
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown prompt mode {mode!r}; known: {list(EVAL_MODES)}")
    return EVAL_MODES[mode]


def case_rng(seed: int, case: str) -> np.random.Generator:
    """A generator for one test case: the same prompts for a case whatever the batch or run."""
    return np.random.default_rng([int(seed), zlib.crc32(str(case).encode())])


def _draw(candidates: np.ndarray, k: int, rng: np.random.Generator,
          replacement: bool = False) -> np.ndarray:
    """``k`` rows of ``candidates`` (M×2): with replacement when asked or when M < k,
    otherwise without."""
    if k == 0 or len(candidates) == 0:
        return candidates[:0]
    idx = rng.choice(len(candidates), size=k, replace=replacement or len(candidates) < k)
    return candidates[idx]


#: Erosions of the mask positives are drawn from: ``disk`` (ours, a disk of
#: ``erode_radius`` px) or ``square2`` (SAM2LoRA's code, a 2×2 square, :func:`erode_square2`).
ERODES = ("disk", "square2")


def erode_square2(mask: np.ndarray) -> np.ndarray:
    """Binary erosion by a 2×2 square of ones, as ``cv2.erode(mask, np.ones((2, 2)))``.

    OpenCV's default anchor ``(-1, -1)`` is the kernel centre, index ``size // 2 = 1`` for a
    size-2 kernel, so the kernel covers the pixel and its up, left and up-left neighbours:
    pixel ``(i, j)`` stays on iff ``(i, j)``, ``(i-1, j)``, ``(i, j-1)`` and ``(i-1, j-1)``
    are all on. Outside the image counts as on (OpenCV's default border value for erosion),
    so the first row and column are judged by their in-image neighbours only. This is
    ``scipy.ndimage.binary_erosion(mask, np.ones((2, 2)), border_value=1)`` with its default
    ``origin=0``, whose centre for an even size is also index 1 (checked in the tests); it
    is the first erosion of :func:`density_candidates` too.
    """
    from scipy.ndimage import binary_erosion

    return binary_erosion(mask, np.ones((2, 2), bool), border_value=1)


#: Point sampling: ``uniform`` (ours) or ``density`` (SAM2LoRA's code, see
#: :func:`density_candidates`).
SAMPLINGS = ("uniform", "density")
#: SAM2LoRA's density region: a first 2×2 erosion, then a square erosion from 15 px down.
DENSITY_FIRST, DENSITY_START, DENSITY_KEEP = 2, 15, 0.9


def density_candidates(mask: np.ndarray, n: int) -> np.ndarray:
    """Candidate positives (M×2 rows, cols) of SAM2LoRA's "density" region.

    As its reference code does: the mask is eroded by a 2×2 square, then by a k×k square
    for k = 15, 14, …; the pixels at ≥ 0.9 of the eroded map's maximum are the region, and
    the first k whose region holds at least ``n`` pixels is used. Where the k×k erosion
    leaves nothing, the maximum is 0 and every pixel of the image qualifies (background
    included): the reference code draws those, and so does this. Where no k gives ``n``
    pixels, the plain mask's pixels are returned (the reference code fails on that image).
    Erosion treats the outside of the image as foreground, as OpenCV's does.
    """
    from scipy.ndimage import binary_erosion

    first = binary_erosion(mask, np.ones((DENSITY_FIRST,) * 2, bool), border_value=1)
    for k in range(DENSITY_START, 0, -1):
        eroded = binary_erosion(first, np.ones((k, k), bool), border_value=1)
        region = eroded >= DENSITY_KEEP * eroded.max()  # all pixels when the erosion is empty
        if int(region.sum()) >= n:
            return np.argwhere(region)
    return np.argwhere(mask)


def _sample_one(mask: np.ndarray, fov: np.ndarray | None, spec: PromptSpec,
                rng: np.random.Generator, erode_radius: int, sampling: str = "uniform",
                replacement: bool = False, erode: str = "disk"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Points (n×2, x y), labels (n) and box (4 or None) of one H×W bool mask.

    ``replacement`` applies to the positives only; ``erode`` to ``uniform`` sampling only.
    """
    points, labels, box = np.zeros((0, 2), np.float32), np.zeros(0, np.int64), None
    if not mask.any():
        return points, labels, box
    if spec.positive:
        if sampling == "density":
            rows_cols = density_candidates(mask, max(spec.positive, MIN_POSITIVE_DRAWS))
        else:
            if erode == "square2":
                inner = erode_square2(mask)
            else:
                inner = erosion(mask, disk(erode_radius)) if erode_radius > 0 else mask
            rows_cols = np.argwhere(inner if inner.any() else mask)
        pos = _draw(rows_cols, max(spec.positive, MIN_POSITIVE_DRAWS), rng,
                    replacement)[:spec.positive]
        points = np.concatenate([points, pos[:, ::-1].astype(np.float32)])
        labels = np.concatenate([labels, np.ones(len(pos), np.int64)])
    if spec.negative:
        outside = ~mask if fov is None else (~mask & fov)
        neg = _draw(np.argwhere(outside), spec.negative, rng)
        points = np.concatenate([points, neg[:, ::-1].astype(np.float32)])
        labels = np.concatenate([labels, np.zeros(len(neg), np.int64)])
    if spec.box:
        rows, cols = np.nonzero(mask)
        box = np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float32)
    return points, labels, box


def _as_bool_maps(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    """``B×1×H×W`` (or B×H×W) masks as a B×H×W bool array (> 0.5 is inside)."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be B×1×H×W or B×H×W, got shape {arr.shape}")
    return arr > 0.5


def sample_prompts(masks: torch.Tensor | np.ndarray, spec: PromptSpec,
                   rng: np.random.Generator | Sequence[np.random.Generator],
                   fovs: torch.Tensor | np.ndarray | None = None,
                   erode_radius: int = 1, sampling: str = "uniform",
                   replacement: bool = False, erode: str = "disk") -> Prompts | None:
    """Sample a batch of prompts from ground-truth masks.

    Args:
        masks: ``B×1×S×S`` ground truth in {0, 1} at model-input size.
        spec: what to sample per image (:class:`PromptSpec`, e.g. ``eval_spec("5pt1neg")``).
        rng: one generator used image after image (training), or one per image
            (evaluation, e.g. :func:`case_rng`).
        fovs: ``B×1×S×S`` field-of-view masks restricting negative points, or None.
        erode_radius: disk radius (px) of the erosion positives are drawn from; 0 = none.
        sampling: ``uniform`` (from the eroded mask) or ``density`` (SAM2LoRA's region,
            :func:`density_candidates`; ``erode_radius`` and ``erode`` are not used then).
        replacement: draw the positives with replacement even when there are enough
            candidates (SAM2LoRA's training sampler); False = without, unless too few.
        erode: ``disk`` (by ``disk(erode_radius)``) or ``square2`` (a 2×2 square,
            :func:`erode_square2`; ``erode_radius`` is not used then), see :data:`ERODES`.

    Returns:
        The batched prompt dict (see the module docstring), or None when ``spec`` asks for
        nothing (prompt-free).
    """
    if spec.empty:
        return None
    maps = _as_bool_maps(masks, "masks")
    fov_maps = None if fovs is None else _as_bool_maps(fovs, "fovs")
    if fov_maps is not None and fov_maps.shape != maps.shape:
        raise ValueError(f"fovs shape {fov_maps.shape} differs from masks {maps.shape}")
    rngs = list(rng) if isinstance(rng, Sequence) else [rng] * len(maps)
    if len(rngs) != len(maps):
        raise ValueError(f"got {len(rngs)} generators for {len(maps)} masks")
    if erode_radius < 0:
        raise ValueError(f"erode_radius must be >= 0, got {erode_radius}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"prompts.sampling: {sampling!r} is not one of {list(SAMPLINGS)}")
    if not isinstance(replacement, (bool, np.bool_)):
        raise ValueError(f"prompts.replacement: must be true or false, got {replacement!r}")
    if erode not in ERODES:
        raise ValueError(f"prompts.erode: {erode!r} is not one of {list(ERODES)}")
    per_image = [_sample_one(m, None if fov_maps is None else fov_maps[i], spec, rngs[i],
                             erode_radius, sampling, bool(replacement), erode)
                 for i, m in enumerate(maps)]
    n = max(len(lab) for _, lab, _ in per_image)
    points = torch.zeros(len(maps), n, 2, dtype=torch.float32)
    labels = torch.full((len(maps), n), PAD_LABEL, dtype=torch.int64)
    boxes = torch.full((len(maps), 4), float("nan")) if spec.box else None
    for i, (pts, lab, box) in enumerate(per_image):
        points[i, :len(lab)] = torch.from_numpy(pts)
        labels[i, :len(lab)] = torch.from_numpy(lab)
        if box is not None and boxes is not None:
            boxes[i] = torch.from_numpy(box)
    return {"points": points, "point_labels": labels, "boxes": boxes}


def check_prompts(prompts: Mapping[str, torch.Tensor | None], batch: int) -> None:
    """Raise ValueError unless ``prompts`` follows the batched format for ``batch`` images."""
    missing = [k for k in ("points", "point_labels", "boxes") if k not in prompts]
    if missing:
        raise ValueError(f"prompts lack key(s) {missing}; expected points, point_labels, boxes")
    pts, lab, box = prompts["points"], prompts["point_labels"], prompts["boxes"]
    if pts is None or lab is None or pts.ndim != 3 or pts.shape[0] != batch or pts.shape[2] != 2:
        raise ValueError(f"prompts['points'] must be {batch}×N×2, got "
                         f"{None if pts is None else tuple(pts.shape)}")
    if tuple(lab.shape) != tuple(pts.shape[:2]):
        raise ValueError(f"prompts['point_labels'] must be {tuple(pts.shape[:2])}, "
                         f"got {tuple(lab.shape)}")
    if box is not None and tuple(box.shape) != (batch, 4):
        raise ValueError(f"prompts['boxes'] must be {batch}×4 or None, got {tuple(box.shape)}")


def image_prompts(prompts: Mapping[str, torch.Tensor | None] | None, i: int
                  ) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
    """The prompts of image ``i``, without padding, shaped for a SAM prompt encoder.

    Returns:
        ``(points, box)``: ``points`` is ``(1×n×2 float coords, 1×n int labels)`` or None
        when image ``i`` has no real point; ``box`` is ``1×4`` or None.
    """
    if prompts is None:
        return None, None
    keep = prompts["point_labels"][i] != PAD_LABEL
    points = None
    if bool(keep.any()):
        points = (prompts["points"][i][keep].unsqueeze(0).float(),
                  prompts["point_labels"][i][keep].unsqueeze(0).to(torch.int64))
    box = prompts["boxes"]
    if box is not None and bool(torch.isfinite(box[i]).all()):
        return points, box[i].unsqueeze(0).float()
    return points, None


def prompts_to(prompts: Prompts | None, device: torch.device | str) -> Prompts | None:
    """Move every tensor of a prompt dict to ``device`` (None stays None)."""
    if prompts is None:
        return None
    return {k: None if v is None else v.to(device) for k, v in prompts.items()}
