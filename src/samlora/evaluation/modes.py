"""Evaluation modes: how a probability map is scored, ours and each paper's.

A mode fixes the geometry (native size, or a square the map and the label are resized to
without keeping the aspect ratio), whether the FOV masks the score, which label is the
reference, which metrics are computed and with which semantics, and which of them the
summary pools over all test pixels instead of averaging per image.

- ``native_fov`` (ours, the default): native resolution, inside the FOV, the metrics of
  ``evaluate.metrics`` (:mod:`samlora.evaluation.metrics`), per-image means.
- ``topolora_ref``: TopoLoRA-SAM's code. 384×384 (512×512 for Kvasir-SEG and SL-SSDD), no
  FOV; Dice, IoU, precision, recall (``sensitivity``) pooled over every test pixel, BFScore
  and clDice (vessel datasets only, as its code) per image, ECE on sampled pixels pooled
  (:mod:`samlora.evaluation.reference_metrics`).
- ``sam2lora_ref``: SAM2LoRA's code. 1024×1024, no FOV, per image, the reference is the
  union of the annotators where a case has two, its metric list and semantics.

The probability map is resized bilinearly (no antialiasing) and the label by nearest
neighbour, as OpenCV's ``INTER_LINEAR``/``INTER_NEAREST`` that both reference codes use;
scoring thresholds are each code's own (``>= evaluate.threshold`` for ours, ``> 0.5``
for theirs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from samlora.evaluation import reference_metrics as ref
from samlora.evaluation.metrics import compute_metrics

#: Column naming the evaluation mode of a row in per-image and summary tables.
MODE_COLUMN = "mode"
DEFAULT_MODE = "native_fov"
#: Column of a pooled mode's per-image additive sums (JSON list, see :func:`components`).
POOL_COLUMN = "pool"
TOPOLORA_METRICS = ("dice", "iou", "precision", "sensitivity", "bfscore", "cldice", "ece")
SAM2LORA_METRICS = ("iou", "auc", "dice", "hd95", "f1", "accuracy", "sensitivity",
                    "specificity", "precision", "mcc", "boundary_iou")
#: Metrics of ``topolora_ref`` that its summary takes from the pooled sums.
POOLED = ("dice", "iou", "precision", "sensitivity", "ece")


@dataclass(frozen=True)
class EvalMode:
    """One way of scoring (see the module docstring).

    Attributes:
        name: the mode's id (the ``mode`` column).
        size: square side maps and labels are resized to; None keeps the native size.
        size_by_dataset: a different side for some datasets.
        fov: whether pixels outside the FOV are ignored.
        union: whether the reference is the union of the annotators (``mask | mask2``).
        metrics: the mode's fixed metric list; None = ``evaluate.metrics``.
        pooled: metrics the summary computes from pooled sums.
    """

    name: str
    size: int | None = None
    size_by_dataset: Mapping[str, int] = field(default_factory=dict)
    fov: bool = True
    union: bool = False
    metrics: tuple[str, ...] | None = None
    pooled: tuple[str, ...] = ()

    def side(self, dataset: str) -> int | None:
        """The square side this mode scores ``dataset`` at (None: native)."""
        return self.size_by_dataset.get(dataset, self.size)

    def metric_names(self, configured: Sequence[str]) -> list[str]:
        """The metric columns this mode fills, given ``evaluate.metrics``."""
        return list(configured) if self.metrics is None else list(self.metrics)

    @property
    def scores_human(self) -> bool:
        """A second observer is scored in this mode unless it is part of the reference."""
        return not self.union


MODES: dict[str, EvalMode] = {
    "native_fov": EvalMode("native_fov"),
    "topolora_ref": EvalMode("topolora_ref", size=384,
                             size_by_dataset={"kvasir_seg": 512, "sl_ssdd": 512}, fov=False,
                             metrics=TOPOLORA_METRICS, pooled=POOLED),
    "sam2lora_ref": EvalMode("sam2lora_ref", size=1024, fov=False, union=True,
                             metrics=SAM2LORA_METRICS),
}


def get_modes(names: Sequence[str], key: str = "evaluate.modes") -> list[EvalMode]:
    """The modes named, in order; ValueError naming ``key`` on an unknown or repeated one."""
    names = [str(n) for n in names]
    unknown = [n for n in names if n not in MODES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"{key}: {names} must name each of {list(MODES)} at most once "
                         f"(at least one){'; unknown: ' + str(unknown) if unknown else ''}")
    return [MODES[n] for n in names]


def metric_union(modes: Sequence[EvalMode], configured: Sequence[str]) -> list[str]:
    """Every metric column of ``modes``, first-seen order."""
    out: list[str] = []
    for mode in modes:
        out += [m for m in mode.metric_names(configured) if m not in out]
    return out


def resize_prob(prob: np.ndarray, side: int) -> np.ndarray:
    """``prob`` resized to side×side bilinearly (half-pixel centres, no antialiasing)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(prob, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False,
                         antialias=False)[0, 0].numpy()


def resize_mask(mask: np.ndarray, side: int) -> np.ndarray:
    """Bool ``mask`` resized to side×side by nearest neighbour (OpenCV's INTER_NEAREST)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None, None]
    return F.interpolate(t, size=(side, side), mode="nearest")[0, 0].numpy().astype(bool)


@dataclass(frozen=True)
class CaseContext:
    """Where a case sits: its dataset, its position in the test order, the run's seed."""

    dataset: str
    index: int
    n_cases: int
    seed: int = 0
    vessel: bool = True
    pixel_mm: float | None = None


def score(mode: EvalMode, prob: np.ndarray, gt: np.ndarray, fov: np.ndarray | None,
          gt2: np.ndarray | None, ctx: CaseContext, configured: Sequence[str],
          threshold: float) -> dict[str, float | str]:
    """One case's metrics in ``mode`` (plus ``pool`` for a pooled mode).

    Args:
        prob: native-size probability map.
        gt: native-size reference label; gt2: the second annotator's, or None.
        fov: native-size field of view, or None.
        ctx: the case's context.
        configured: ``evaluate.metrics`` (used by ``native_fov``).
        threshold: our threshold (``native_fov``).
    """
    if mode.union and gt2 is not None:
        gt = gt | gt2
    side = mode.side(ctx.dataset)
    if side is not None:
        prob, gt = resize_prob(prob, side), resize_mask(gt, side)
    if mode.name == "native_fov":
        return compute_metrics(prob, gt, fov if mode.fov else None, threshold=threshold,
                               names=list(configured), pixel_mm=ctx.pixel_mm)
    if mode.name == "sam2lora_ref":
        return ref.sam2lora_metrics(prob, gt)
    return _topolora(prob, gt, ctx)


def _topolora(prob: np.ndarray, gt: np.ndarray, ctx: CaseContext) -> dict[str, float | str]:
    pred = prob > 0.5
    tp, fp, fn, tn = ref.counts(pred, gt)
    rng = np.random.default_rng([int(ctx.seed), int(ctx.index)])
    k = ref.ece_sample_sizes(ctx.n_cases)[ctx.index]
    calib = ref.ece_components(prob, gt, k, rng)
    out: dict[str, float | str] = dict(ref.seglab_overlap(tp, fp, fn))
    out["bfscore"] = ref.seglab_bfscore(pred, gt)
    out["cldice"] = ref.seglab_cldice(pred, gt) if ctx.vessel else float("nan")
    out["ece"] = ref.ece_from_components(calib)
    out[POOL_COLUMN] = json.dumps([tp, fp, fn, tn, *(round(float(x), 6) for x in calib)],
                                  separators=(",", ":"))
    return out


def pooled_values(sums: np.ndarray) -> dict[str, float]:
    """The pooled metrics of ``topolora_ref`` from summed ``pool`` vectors."""
    tp, fp, fn = sums[0], sums[1], sums[2]
    return {**ref.seglab_overlap(tp, fp, fn), "ece": ref.ece_from_components(sums[4:])}


def decode_pool(values: Sequence[str]) -> np.ndarray:
    """Rows × components array of ``pool`` strings."""
    return np.array([json.loads(v) for v in values], dtype=np.float64)
