"""TopoLoRA-SAM's qualitative panels and per-model reliability data, read from the
prediction folders behind a study's per-image tables.

The case shown follows TopoLoRA-SAM's figure script: on one seed (the lowest both runs have),
the test image where ours gains most over the baseline in per-image clDice (Dice on a
non-vessel set), skipping images ours already gets perfect (≥ 0.999). Its script compares
with one fixed baseline (Mask2Former on the retina sets, SegFormer on SL-SSDD) and draws a
signed error-difference map; here the retina baseline is the best baseline of the study on
that test set by Dice (SegFormer stays fixed on SL-SSDD), and the last panel is ours' error
map: false positives and false negatives in two colours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from samlora.reporting.figures import load_example
from samlora.reporting.style import OVERLAY_COLOURS, use_style
from samlora.reporting.tables import METRIC_LABELS, mode_rows
from samlora.reporting.topolora import DATASET_LABELS, RETINA, method_label

OUR_MODE = "native_fov"
HUMAN = "human"
BASELINES = ("unet_r34", "deeplabv3p_r50", "segformer_b0", "mask2former_swin_t")
#: Baselines the reference figure fixes for a test set.
FIXED_BASELINE = {"sl_ssdd": "segformer_b0"}
#: Ours at or above this per-image value is "already perfect" and not shown.
PERFECT = 0.999
#: Error-map colours: false positive, false negative; everything else shown dim.
ERROR_COLOURS = {"fp": OVERLAY_COLOURS["fp"], "fn": OVERLAY_COLOURS["fn"]}

Key = tuple[str, str, str, str]  # method, train set, seed, test set


def prediction_folders(per_image_csvs: Sequence[str | Path]) -> dict[Key, Path]:
    """The results folder of each per-image table, keyed by the run identity its
    ``predictions.json`` records (tables without one, e.g. the human row, are skipped)."""
    out: dict[Key, Path] = {}
    for csv in per_image_csvs:
        pred = Path(csv).parent / "predictions.json"
        if pred.is_file():
            p = json.loads(pred.read_text())
            out[(str(p["method"]), str(p["train_set"]), str(p["seed"]),
                 Path(csv).parent.name)] = Path(csv).parent
    return out


def _ours(per_image: pd.DataFrame) -> pd.DataFrame:
    rows = mode_rows(per_image)
    return rows.assign(seed=rows["seed"].astype(str), case=rows["case"].astype(str))


def gain_metric(test_set: str) -> str:
    """clDice on a vessel set, Dice elsewhere (as the reference figure ranks)."""
    return "cldice" if test_set in RETINA else "dice"


def pick_gain_case(per_image: pd.DataFrame, method: str, baseline: str, test_set: str,
                   metric: str | None = None, train_set: str | None = None
                   ) -> tuple[str, str, float]:
    """The (seed, case, gain) of the largest per-image gain of ``method`` over
    ``baseline`` on ``test_set`` (in-domain unless ``train_set`` is given), on the lowest
    seed both have, among cases where ``method`` is below :data:`PERFECT`.

    Raises:
        ValueError: either method has no row there, or they share no seed and case.
    """
    metric = metric or gain_metric(test_set)
    rows = _ours(per_image)
    train = train_set or test_set
    sides = {}
    for name in (method, baseline):
        side = rows[(rows["method"] == name) & (rows["test_set"] == test_set)
                    & (rows["train_set"] == train)]
        if side.empty:
            raise ValueError(f"no per-image rows of {name} trained on {train} and tested on "
                             f"{test_set}")
        sides[name] = side
    seeds = sorted(set(sides[method]["seed"]) & set(sides[baseline]["seed"]),
                   key=lambda s: (len(s), s))
    if not seeds:
        raise ValueError(f"{method} and {baseline} share no seed on {test_set}")
    seed = seeds[0]
    a, b = (sides[n][sides[n]["seed"] == seed].set_index("case")[metric]
            for n in (method, baseline))
    pair = pd.concat([a.rename("ours"), b.rename("base")], axis=1, join="inner").dropna()
    pair = pair[pair["ours"] < PERFECT]
    if pair.empty:
        raise ValueError(f"{method} and {baseline} share no scored case on {test_set} "
                         f"(seed {seed})")
    gain = (pair["ours"] - pair["base"]).sort_values(ascending=False, kind="stable")
    return seed, str(gain.index[0]), float(gain.iloc[0])


def best_baseline(summary: pd.DataFrame, test_set: str, baselines: Sequence[str] = BASELINES,
                  metric: str = "dice") -> str | None:
    """The baseline with the highest in-domain mean ``metric`` on ``test_set`` (our mode,
    prompt-free); None when no baseline has a value there."""
    rows = mode_rows(summary)
    rows = rows[(rows["test_set"] == test_set) & (rows["train_set"] == test_set)
                & rows["method"].isin(list(baselines))]
    col = f"{metric}_mean"
    if col not in rows.columns or rows[col].notna().sum() == 0:
        return None
    return str(rows.loc[rows[col].idxmax(), "method"])


def error_map(gt: np.ndarray, pred: np.ndarray, fov: np.ndarray | None) -> np.ndarray:
    """H×W×3 float: false positives and false negatives (inside the FOV) in
    :data:`ERROR_COLOURS`, true positives light grey, the rest black; outside the FOV dark
    grey."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    inside = np.ones(gt.shape, bool) if fov is None else fov.astype(bool)
    out = np.zeros((*gt.shape, 3), np.float32)
    out[~inside] = 0.25
    out[pred & gt & inside] = 0.8
    out[pred & ~gt & inside] = ERROR_COLOURS["fp"]
    out[~pred & gt & inside] = ERROR_COLOURS["fn"]
    return out


@dataclass
class PanelRow:
    """One dataset's row of the qualitative figure (arrays at native size)."""

    test_set: str
    case: str
    seed: str
    metric: str
    image: np.ndarray
    gt: np.ndarray
    fov: np.ndarray | None
    baseline: str
    baseline_prob: np.ndarray
    baseline_value: float
    method: str
    prob: np.ndarray
    value: float


def qualitative_figure(rows: Sequence[PanelRow], threshold: float = 0.5) -> Figure:
    """One row per dataset: input, reference, best baseline, ours, ours' error map.

    Raises:
        ValueError: no row.
    """
    if not rows:
        raise ValueError("no qualitative row: the study lacks ours or a baseline on every "
                         "dataset shown")
    use_style()
    h, w = rows[0].gt.shape
    fig = Figure(figsize=(13.0, len(rows) * 13.0 * h / (5 * w) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), 5))
    for ax_row, r in zip(axes, rows):
        label = DATASET_LABELS.get(r.test_set, r.test_set)
        mask = (lambda p: np.asarray(p) >= threshold)
        shown_gt = r.gt if r.fov is None else r.gt & r.fov.astype(bool)
        panels = [(r.image, f"{label} {r.case} (seed {r.seed})"), (shown_gt, "Reference"),
                  (mask(r.baseline_prob), f"{method_label(r.baseline)}\n"
                   f"{METRIC_LABELS[r.metric]} {r.baseline_value:.3f}"),
                  (mask(r.prob), f"{method_label(r.method)}\n"
                   f"{METRIC_LABELS[r.metric]} {r.value:.3f}"),
                  (error_map(r.gt, mask(r.prob), r.fov), f"{method_label(r.method)} errors")]
        for ax, (data, title) in zip(ax_row, panels):
            ax.imshow(data, cmap="gray" if data.ndim == 2 else None, interpolation="nearest")
            ax.set_title(title, fontsize="small")
            ax.set_axis_off()
    handles = [Patch(color=ERROR_COLOURS["fp"], label="false positive"),
               Patch(color=ERROR_COLOURS["fn"], label="false negative")]
    axes[0, 4].legend(handles=handles, loc="lower right", fontsize="x-small", framealpha=0.8)
    return fig


def load_gain_rows(per_image_csvs: Sequence[str | Path], processed_root: Path,
                   summary: pd.DataFrame, datasets: Sequence[str] = ("drive", "chase_db1",
                                                                      "sl_ssdd"),
                   method: str = "topolora_sam", baselines: Sequence[str] = BASELINES,
                   fixed: Mapping[str, str] = FIXED_BASELINE, fallback: bool = True
                   ) -> tuple[list[PanelRow], list[str]]:
    """The rows :func:`qualitative_figure` draws, and a note per dataset left out (no run
    of ours or of a baseline there) or compared otherwise: with ``fallback``, a study
    without any baseline run compares ours with its best other method (named in a note)."""
    from samlora.evaluation.aggregate import read_per_image

    csvs = [Path(p) for p in per_image_csvs]
    folders = prediction_folders(csvs)
    per_image = read_per_image([p for p in csvs if p.is_file()]) if csvs else pd.DataFrame()
    rows, notes = [], []
    for d in datasets:
        base = fixed.get(d) or best_baseline(summary, d, baselines)
        if base is None and fallback:  # no baseline in this study: the best other method
            others = [m for m in dict.fromkeys(summary["method"]) if m not in (method, HUMAN)]
            base = best_baseline(summary, d, others)
            if base is not None:
                notes.append(f"{d}: no baseline run; compared with {base}, the best other "
                             "method of the study")
        if base is None:
            notes.append(f"{d}: no baseline run")
            continue
        try:
            seed, case, _ = pick_gain_case(per_image, method, base, d)
        except (ValueError, KeyError) as err:
            notes.append(f"{d}: {err}")
            continue
        metric = gain_metric(d)
        ours = load_example(processed_root, folders[(method, d, seed, d)], case)
        theirs = load_example(processed_root, folders[(base, d, seed, d)], case)
        values = _ours(per_image).set_index(["method", "train_set", "seed", "test_set",
                                             "case"])[metric]
        rows.append(PanelRow(d, case, seed, metric, ours.image, ours.gt, ours.fov, base,
                             theirs.prob, float(values[(base, d, seed, d, case)]), method,
                             ours.prob, float(values[(method, d, seed, d, case)])))
    return rows, notes


def reliability_curves(per_image_csvs: Sequence[str | Path], processed_root: Path,
                       test_sets: Sequence[str] | None = None, max_images: int | None = None
                       ) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per method (its label), the per-image reliability curve of every in-domain test
    image of its lowest seed (probability map, reference and FOV at native size: the
    ``native_*`` files of a set prepared at another resolution), for
    :func:`samlora.reporting.topolora.reliability_figure` to pool."""
    from samlora.evaluation.calibration import reliability_curve
    from samlora.evaluation.evaluate import load_test_cases, read_mask_png
    from samlora.utils.io import read_prob_png

    chosen: dict[str, tuple[str, Path]] = {}
    for (method, train, seed, test), folder in sorted(prediction_folders(per_image_csvs)
                                                      .items()):
        if train != test or (test_sets is not None and test not in test_sets):
            continue
        best = chosen.get(f"{method}/{test}")
        if best is None or (len(seed), seed) < (len(best[0]), best[0]):
            chosen[f"{method}/{test}"] = (seed, folder)
    curves: dict[str, list[dict[str, np.ndarray]]] = {}
    for key, (_, folder) in chosen.items():
        method, test = key.split("/")
        cases = load_test_cases(Path(processed_root) / test)
        cases = cases[cases["mask"] != ""]
        if max_images is not None:
            cases = cases.head(max_images)
        for row in cases.to_dict("records"):
            prob_path = folder / "probs" / f"{row['case']}.png"
            if not prob_path.is_file():
                raise FileNotFoundError(f"{prob_path}: prediction missing; run the predict "
                                        f"step for {folder} again")
            root = Path(processed_root) / test
            native = {k: row.get(f"native_{k}") or row[k] for k in ("mask", "fov")}
            fov = read_mask_png(root / native["fov"]) if native["fov"] else None
            curves.setdefault(method_label(method), []).append(reliability_curve(
                read_prob_png(prob_path), read_mask_png(root / native["mask"]), fov))
    return curves
