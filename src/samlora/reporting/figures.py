"""Figures for the notebooks: prediction overlays and per-image metric distributions."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from samlora.evaluation.evaluate import load_test_cases, read_mask_png
from samlora.evaluation.metrics import dice
from samlora.reporting.style import OVERLAY_COLOURS, use_style
from samlora.reporting.tables import METRIC_LABELS
from samlora.utils.io import atomic_path, read_prob_png

log = logging.getLogger(__name__)


@dataclass
class Example:
    """One test image with its labels and a run's prediction, all H×W at native size."""

    case: str
    test_set: str
    image: np.ndarray  # H×W×3 uint8
    gt: np.ndarray  # H×W bool
    prob: np.ndarray  # H×W float32 in [0, 1]
    fov: np.ndarray | None  # H×W bool, None = whole image
    run: str = ""  # "<method>, trained on <train_set>, <seed>"


def find_example_run(results_root: Path) -> Path:
    """First (sorted) ``<study>/<method>/<train>/seed<k>/<test_set>`` folder holding probs/.

    Raises:
        FileNotFoundError: no such folder under ``results_root``.
    """
    runs = sorted(p.parent for p in Path(results_root).glob("*/*/*/seed*/*/probs") if p.is_dir())
    if not runs:
        raise FileNotFoundError(f"no results/<study>/<method>/<train>/seed<k>/<test>/probs "
                                f"folder under {results_root}")
    return runs[0]


def load_example(processed_root: Path, example_run: Path, case: str | None = None) -> Example:
    """Load a test case and its prediction from one run.

    Args:
        processed_root: ``data/processed`` (holds ``<test_set>/index.csv``).
        example_run: ``results/<study>/<method>/<train>/seed<k>/<test_set>``; its last
            folder name is the test set.
        case: test case id; None = the first test case of index.csv.

    Returns:
        The :class:`Example`.

    Raises:
        KeyError: ``case`` is not a test case of the test set.
        FileNotFoundError: the prediction of the case is missing.
    """
    example_run = Path(example_run)
    test_set = example_run.name
    folder = Path(processed_root) / test_set
    cases = load_test_cases(folder)
    if case is None:  # the first test case with a reference label (some releases have none)
        labelled = cases[cases["mask"] != ""]
        if labelled.empty:
            raise ValueError(f"{folder}/index.csv: no test case has a reference label to show; "
                             "set report.example_case or use a labelled release")
        row = labelled.iloc[0]
    else:
        match = cases[cases["case"] == str(case)]
        if match.empty:
            raise KeyError(f"'{case}' is not a test case of {folder}/index.csv; "
                           f"test cases: {list(cases['case'][:10])}…")
        row = match.iloc[0]
    prob_path = example_run / "probs" / f"{row['case']}.png"
    if not prob_path.is_file():
        raise FileNotFoundError(f"prediction {prob_path} not found")
    native = {k: row.get(f"native_{k}") or row[k] for k in ("mask", "fov")}
    gt_size = None
    if row["mask"]:
        with Image.open(folder / native["mask"]) as m:
            gt_size = m.size
    with Image.open(folder / row["image"]) as im:  # shown at the labels' (native) size
        im = im.convert("RGB")
        image = np.asarray(im if gt_size in (None, im.size)
                           else im.resize(gt_size, Image.Resampling.BILINEAR))
    fov = read_mask_png(folder / native["fov"]) if native["fov"] else None
    if not row["mask"]:
        raise ValueError(f"test case {row['case']} of {folder}/index.csv has no reference label "
                         "to show; pick a labelled case in report.example_case")
    from samlora.evaluation.evaluate import read_predictions

    pred = read_predictions(example_run)  # the run's identity, not the folder's names
    return Example(case=str(row["case"]), test_set=test_set, image=image,
                   gt=read_mask_png(folder / native["mask"]), prob=read_prob_png(prob_path),
                   fov=fov,
                   run=f"{pred['method']}, trained on {pred['train_set']}, seed {pred['seed']}")


def overlay_rgb(
    image: np.ndarray, gt: np.ndarray, pred: np.ndarray, fov: np.ndarray | None, alpha: float = 0.8
) -> np.ndarray:
    """TP/FP/FN pixels (inside the FOV) blended in their colours over the image shown in
    grey (its luminance), so the class colours stand out on a red fundus; H×W×3 float."""
    rgb = image.astype(np.float32) / 255.0
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32) if rgb.ndim == 3 else rgb
    out = np.repeat(grey[..., None], 3, axis=2)
    inside = np.ones(gt.shape, bool) if fov is None else fov.astype(bool)
    classes = {"tp": pred & gt, "fp": pred & ~gt, "fn": ~pred & gt}
    for name, where in classes.items():
        where = where & inside
        out[where] = (1 - alpha) * out[where] + alpha * np.asarray(OVERLAY_COLOURS[name])
    return np.clip(out, 0.0, 1.0)


def overlay_figure(
    image: np.ndarray,
    gt: np.ndarray,
    prob: np.ndarray,
    fov: np.ndarray | None,
    threshold: float,
    title: str | None = None,
) -> Figure:
    """Three panels: the image, its ground truth, and the prediction overlaid on the image.

    The overlay colours true positives yellow, false positives vermillion and false
    negatives blue (inside the FOV) over the image in grey; the panel title gives the Dice
    inside the FOV.

    Args:
        image: H×W×3 uint8 RGB image.
        gt: H×W bool ground truth.
        prob: H×W float probability map; vessel where ``prob >= threshold``.
        fov: H×W bool field of view, or None.
        threshold: probability threshold.
        title: optional figure title.

    Returns:
        A matplotlib Figure (no pyplot state) with 3 axes.
    """
    use_style()
    if image.shape[:2] != gt.shape or prob.shape != gt.shape:
        raise ValueError(f"shapes differ: image {image.shape}, gt {gt.shape}, prob {prob.shape}")
    gt = gt.astype(bool)
    pred = np.asarray(prob) >= threshold
    h, w = gt.shape
    fig = Figure(figsize=(12.0, 12.0 * h / (3 * w) + 0.9), layout="constrained")
    axes = fig.subplots(1, 3)
    shown_gt = gt if fov is None else gt & fov.astype(bool)
    panels = [(image, "Image"), (shown_gt, "Ground truth"),
              (overlay_rgb(image, gt, pred, fov),
               f"Prediction (p ≥ {threshold:g}), Dice {dice(pred, gt, fov):.3f}")]
    for ax, (data, label) in zip(axes, panels):
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, interpolation="nearest")
        ax.set_title(label)
        ax.set_axis_off()
    handles = [Patch(color=OVERLAY_COLOURS[k], label=k.upper()) for k in ("tp", "fp", "fn")]
    axes[2].legend(handles=handles, loc="lower right", fontsize="small", framealpha=0.8)
    if title:
        fig.suptitle(title)
    return fig


def per_image_figure(per_image: pd.DataFrame, metric: str = "dice") -> Figure:
    """Distribution of a per-image metric: one box per test set and method (all seeds).

    A prompted method's modes are told apart as ``<method> (<mode>)``.

    Args:
        per_image: concatenated per-image table (``method``, ``test_set``, metric columns;
            optionally ``prompt``).
        metric: metric column to plot.

    Returns:
        A matplotlib Figure with one axis.
    """
    import seaborn as sns

    use_style()
    if metric not in per_image.columns:
        raise KeyError(f"per-image table has no '{metric}' column")
    if "mode" in per_image.columns:  # our evaluation mode only
        per_image = per_image[per_image["mode"].fillna("native_fov") == "native_fov"]
    if "prompt" in per_image.columns:
        prompted = per_image["prompt"].fillna("none") != "none"
        per_image = per_image.assign(method=per_image["method"].where(
            ~prompted, per_image["method"] + " (" + per_image["prompt"].astype(str) + ")"))
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    with warnings.catch_warnings():  # seaborn 0.13 passes bxp(vert=...), deprecated in mpl 3.11
        warnings.filterwarnings("ignore", message=".*vert: bool.*")
        sns.boxplot(data=per_image, x="test_set", y=metric, hue="method", ax=ax, fliersize=0)
    dots = {m: "0.2" for m in per_image["method"].unique()}
    sns.stripplot(data=per_image, x="test_set", y=metric, hue="method", dodge=True, ax=ax,
                  size=2.5, palette=dots, legend=False)
    if ax.get_legend() is not None:
        ax.get_legend().set_title("Method")
    ax.set_xlabel("Test set")
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} per image")
    return fig


def save_figure(fig: Figure, path: Path, dpi: int = 200) -> Path:
    """Save ``fig`` atomically; the format follows the suffix (.png, .pdf, .svg)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    log.info("figure written to %s", path)
    return Path(path)


def save_figures(fig: Figure, stem: Path, dpi: int = 200) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf`` (print and screen)."""
    return [save_figure(fig, Path(stem).with_suffix(ext), dpi) for ext in (".png", ".pdf")]
