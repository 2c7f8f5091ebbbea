"""TopoLoRA-SAM's tables and figures, built from a study's ``results/<study>/summary.csv``.

Every cell is ``format_mean_std`` of a summary row (mean ± std over seeds); a cell without
a row, or with no value, is "–" and never filled in. Averages over datasets ("Retina avg.",
"Overall avg.") are the mean of the per-dataset means, which equals the mean over seeds of
each seed's average. Their std cannot be recovered from per-dataset stds (the seeds of
different datasets are different trainings, their pairing arbitrary), so it is reported as
the **mean of the per-dataset stds**, an upper bound of the std over seeds of the per-seed
average whatever the correlation (triangle inequality); ``avg_std="none"`` leaves it out.
An average over a dataset without a value is "–" (never averaged over fewer datasets).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from samlora.reporting.style import use_style
from samlora.reporting.tables import METRIC_LABELS, OUR_MODE, format_mean_std, mode_rows

RETINA = ("drive", "stare", "chase_db1")
DATASETS = (*RETINA, "kvasir_seg", "sl_ssdd")
DATASET_LABELS = {"drive": "DRIVE", "stare": "STARE", "chase_db1": "CHASE_DB1",
                  "kvasir_seg": "Kvasir-SEG", "sl_ssdd": "SL-SSDD"}
HUMAN = "human"
METHOD_LABELS = {"unet_r34": "U-Net (R34)", "deeplabv3p_r50": "DeepLabV3+ (R50)",
                 "segformer_b0": "SegFormer-B0", "mask2former_swin_t": "Mask2Former (Swin-T)",
                 "topolora_sam": "TopoLoRA-SAM",
                 "topolora_sam_no_cldice": "TopoLoRA-SAM w/o clDice", "decoder_only":
                 "Decoder only", "lora_only": "LoRA only", "adapter_only": "Adapter only",
                 "cldice_only": "clDice only", HUMAN: "Human (second observer)"}
#: Metrics where lower is better (best-per-row picks the minimum).
LOWER_IS_BETTER = frozenset({"ece", "betti0_error", "betti1_error", "hd95", "assd", "hd95_mm",
                             "assd_mm"})
#: Component ablation: method -> (LoRA, spatial adapter, clDice loss).
COMPONENTS = {"decoder_only": (False, False, False), "lora_only": (True, False, False),
              "adapter_only": (False, True, False), "cldice_only": (False, False, True),
              "topolora_sam": (True, True, True)}
#: Plain methods a sweep value resolves to (``studies.method_variants``): their rank / λ.
RANK_ALIASES = {"topolora_sam": 8, "topolora_sam_r16": 16}
CLDICE_ALIASES = {"topolora_sam": 0.5, "topolora_sam_no_cldice": 0.0}
MISSING = "–"
AvgStd = Literal["mean_of_stds", "none"]


def method_label(method: str) -> str:
    """Readable name of a method id (the id itself when unknown)."""
    return METHOD_LABELS.get(method, method)


def _ml(metric: str) -> str:
    """Metric label; sensitivity is "Recall", as TopoLoRA-SAM names it."""
    return "Recall" if metric == "sensitivity" else METRIC_LABELS.get(metric, metric)


def _dl(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def _lookup(rows: pd.DataFrame, method: str, test_set: str,
            train_set: str | None = None) -> pd.Series | None:
    """The row of ``method`` on ``test_set`` trained on ``train_set`` (None: in-domain;
    the human baseline has no train set); None without one."""
    want = test_set if train_set is None else train_set
    hit = rows[(rows["method"] == method) & (rows["test_set"] == test_set)
               & ((rows["train_set"] == want) | (rows["method"] == HUMAN))]
    if len(hit) > 1:
        raise ValueError(f"summary has {len(hit)} rows for {method}/{want}/{test_set}")
    return None if hit.empty else hit.iloc[0]


def _value(row: pd.Series | None, metric: str) -> tuple[float, float]:
    """(mean, std) of ``metric`` in ``row``; nan where absent."""
    if row is None:
        return math.nan, math.nan
    mean, std = row.get(f"{metric}_mean", math.nan), row.get(f"{metric}_std", math.nan)
    return float(mean) if pd.notna(mean) else math.nan, float(std) if pd.notna(std) else math.nan


def _cells(row: pd.Series | None, metrics: Sequence[str], decimals: int) -> dict[str, str]:
    return {_ml(k): format_mean_std(*_value(row, k), decimals) for k in metrics}


def dataset_average(summary: pd.DataFrame, method: str, datasets: Sequence[str] = RETINA,
                    metric: str = "dice", mode: str | None = OUR_MODE,
                    avg_std: AvgStd = "mean_of_stds") -> tuple[float, float]:
    """In-domain (mean, std) of ``metric`` averaged over ``datasets`` (see the module
    docstring for the std); nan mean when a dataset has no value, nan std when one has none."""
    rows = mode_rows(summary, mode)
    values = [_value(_lookup(rows, method, d), metric) for d in datasets]
    means, stds = np.array([v[0] for v in values]), np.array([v[1] for v in values])
    if not len(means) or np.isnan(means).any():
        return math.nan, math.nan
    std = float(stds.mean()) if avg_std == "mean_of_stds" and not np.isnan(stds).any() else math.nan
    return float(means.mean()), std


def _methods(rows: pd.DataFrame, methods: Sequence[str] | None,
             datasets: Sequence[str]) -> list[str]:
    """``methods``, or those with an in-domain row on ``datasets`` in summary order, human last."""
    if methods is not None:
        return list(methods)
    keep = rows[rows["test_set"].isin(datasets) & ((rows["train_set"] == rows["test_set"])
                                                   | (rows["method"] == HUMAN))]
    found = list(dict.fromkeys(keep["method"]))
    return [m for m in found if m != HUMAN] + [m for m in found if m == HUMAN]


def benchmark_table(summary: pd.DataFrame, mode: str | None = OUR_MODE,
                    methods: Sequence[str] | None = None, datasets: Sequence[str] = DATASETS,
                    metric: str = "dice", decimals: int = 3,
                    avg_std: AvgStd = "mean_of_stds") -> pd.DataFrame:
    """Main benchmark: in-domain ``metric`` per method (rows) and test set (columns), then
    "Retina avg." (DRIVE, STARE, CHASE_DB1) and "Overall avg." (every dataset).

    ``attrs["missing"]`` lists the (method, dataset) pairs without a summary row.
    """
    rows = mode_rows(summary, mode)
    methods = _methods(rows, methods, datasets)
    table = pd.DataFrame(index=pd.Index([method_label(m) for m in methods], name="Method"))
    missing = []
    for d in datasets:
        cells = []
        for m in methods:
            row = _lookup(rows, m, d)
            missing += [(m, d)] if row is None else []
            cells.append(format_mean_std(*_value(row, metric), decimals))
        table[_dl(d)] = cells
    for label, group in (("Retina avg.", [d for d in datasets if d in RETINA]),
                         ("Overall avg.", list(datasets))):
        if group:
            table[label] = [format_mean_std(*dataset_average(summary, m, group, metric, mode,
                                                             avg_std), decimals) for m in methods]
    table.attrs["missing"] = missing
    table.attrs["avg_std"] = avg_std
    return table


def metrics_table(summary: pd.DataFrame, mode: str | None = OUR_MODE,
                  methods: Sequence[str] | None = None, datasets: Sequence[str] = DATASETS,
                  metrics: Sequence[str] = ("iou", "precision", "sensitivity", "bfscore",
                                            "cldice", "ece"),
                  decimals: int = 3) -> pd.DataFrame:
    """Per dataset × method (in-domain): IoU, precision, recall (= sensitivity), BFScore,
    clDice (vessel datasets only, "–" elsewhere) and ECE."""
    rows = mode_rows(summary, mode)
    methods = _methods(rows, methods, datasets)
    records, index = [], []
    for d in datasets:
        for m in methods:
            shown = [k for k in metrics if k != "cldice" or d in RETINA]
            records.append(_cells(_lookup(rows, m, d), shown, decimals))
            index.append((_dl(d), method_label(m)))
    return pd.DataFrame(records, columns=[_ml(k) for k in metrics]).fillna(MISSING).set_axis(
        pd.MultiIndex.from_tuples(index, names=["Dataset", "Method"]))


def best_per_row(values: pd.DataFrame, metric: str, exclude: Sequence[str] = ()) -> pd.Series:
    """Column of the best value in each row (min for :data:`LOWER_IS_BETTER`, else max),
    ignoring nan and the ``exclude`` columns; None for a row without any value."""
    pool = values.drop(columns=[c for c in exclude if c in values.columns])
    has = pool.notna().any(axis=1)
    full = pool[has]
    pick = full.idxmin if metric in LOWER_IS_BETTER else full.idxmax
    out = pd.Series([None] * len(pool), index=pool.index, dtype=object)
    if has.any():
        out[has] = pick(axis=1, skipna=True)
    return out


def heatmap_figure(summary: pd.DataFrame, metric: str = "dice", mode: str | None = OUR_MODE,
                   methods: Sequence[str] | None = None, datasets: Sequence[str] = DATASETS,
                   decimals: int = 3, cmap: str = "cividis") -> Figure:
    """Datasets (rows) × methods (columns) heatmap of the in-domain ``metric``: cells
    "mean ± std", the best method per row in bold and boxed (the human row is never best)."""
    use_style()
    rows = mode_rows(summary, mode)
    methods = _methods(rows, methods, datasets)
    cells = {(d, m): _value(_lookup(rows, m, d), metric) for d in datasets for m in methods}
    means = pd.DataFrame([[cells[d, m][0] for m in methods] for d in datasets],
                         index=list(datasets), columns=methods)
    best = best_per_row(means, metric, exclude=[HUMAN])
    fig = Figure(figsize=(1.6 + 1.45 * len(methods), 1.0 + 0.6 * len(datasets)),
                 layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(means.to_numpy(float), cmap=cmap, aspect="auto")
    for i, d in enumerate(datasets):
        for j, m in enumerate(methods):
            mean, std = cells[d, m]
            shade = image.norm(mean) if math.isfinite(mean) else 1.0
            is_best = best[d] == m
            ax.text(j, i, format_mean_std(mean, std, decimals), ha="center", va="center",
                    fontsize="small", color="black" if shade > 0.55 else "white",
                    fontweight="bold" if is_best else "normal")
            if is_best:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.0,
                                       edgecolor="#d55e00"))
    ax.set_xticks(range(len(methods)), list(map(method_label, methods)), rotation=30,
                  ha="right")
    ax.set_yticks(range(len(datasets)), [_dl(d) for d in datasets])
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    fig.colorbar(image, ax=ax, label=f"{_ml(metric)} ({better} is better)")
    ax.set_title(f"{_ml(metric)}, mean ± std over seeds (best boxed)")
    return fig


def tradeoff_figure(summary: pd.DataFrame, params: pd.DataFrame, mode: str | None = OUR_MODE,
                    methods: Sequence[str] | None = None, datasets: Sequence[str] = RETINA,
                    metric: str = "dice") -> Figure:
    """Retina-average ``metric`` (y, error bars: mean of the per-dataset stds over seeds)
    against trainable parameters (x, log scale), one labelled point per method with both.

    Raises:
        ValueError: no method has a trainable count and every dataset's value.
    """
    use_style()
    trainable = dict(zip(params["method"], params["trainable"]))
    rows = mode_rows(summary, mode)
    points = []
    for m in _methods(rows, methods, datasets):
        mean, std = dataset_average(summary, m, datasets, metric, mode)
        if m in trainable and pd.notna(trainable[m]) and math.isfinite(mean):
            points.append((m, float(trainable[m]), mean, std))
    if not points:
        raise ValueError("no method has both a trainable-parameter count and a value on "
                         f"every dataset of {list(datasets)}")
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for m, x, y, err in points:
        ax.errorbar(x, y, yerr=None if math.isnan(err) else err, fmt="o", capsize=3, ms=6,
                    color="#d55e00" if m.startswith("topolora") else "#0072b2")
        ax.annotate(method_label(m), (x, y), xytext=(5, 5), textcoords="offset points",
                    fontsize="small")
    ax.set_xscale("log")
    ax.set_xlabel("Trainable parameters")
    ax.set_ylabel(f"{_ml(metric)}, average over {'/'.join(map(_dl, datasets))}")
    ax.grid(True, which="major", alpha=0.3)
    return fig


def pool_reliability(curves: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pixel-weighted pooling of per-image ``calibration.reliability_curve`` outputs
    (same bins): counts summed, confidence and accuracy count-weighted; ``ece`` added."""
    count = np.sum([c["count"] for c in curves], axis=0).astype(float)
    sums = {k: np.sum([np.nan_to_num(c[k]) * c["count"] for c in curves], axis=0)
            for k in ("confidence", "accuracy")}
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, acc = (np.where(count > 0, sums[k] / count, np.nan) for k in sums)
    full = count > 0
    ece = float(np.sum(count[full] * np.abs(acc[full] - conf[full])) / count.sum()) \
        if count.sum() else math.nan
    return {"edges": np.asarray(curves[0]["edges"]), "count": count, "confidence": conf,
            "accuracy": acc, "ece": np.float64(ece)}


def reliability_figure(curves: Mapping[str, Sequence[Mapping[str, np.ndarray]]],
                       title: str | None = None) -> Figure:
    """Reliability diagram: per label, the pooled (:func:`pool_reliability`) accuracy
    against confidence, the diagonal, and each bin's share of pixels (log) below."""
    use_style()
    fig = Figure(figsize=(5.0, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], ls="--", color="0.5", label="perfect calibration")
    for label, group in curves.items():
        pooled = pool_reliability(list(group))
        centres = (pooled["edges"][:-1] + pooled["edges"][1:]) / 2
        top.plot(pooled["confidence"], pooled["accuracy"], marker="o", ms=3,
                 label=f"{label} (ECE {float(pooled['ece']):.3f})")
        bottom.plot(centres, pooled["count"] / pooled["count"].sum(), marker=".")
    top.set(ylabel="Fraction foreground (accuracy)", xlim=(0, 1), ylim=(0, 1))
    top.legend(fontsize="small")
    bottom.set(yscale="log", xlabel="Predicted probability (confidence)", ylabel="Pixel share")
    if title:
        fig.suptitle(title)
    return fig


def _sweep_rows(rows: pd.DataFrame, dataset: str, leaf: str, stem: str,
                aliases: Mapping[str, float]) -> list[tuple[float, str]]:
    """(swept value, method) of the in-domain rows on ``dataset`` named ``<stem>-<leaf><v>``
    (``studies.method_variants``) or listed in ``aliases``, sorted by value."""
    pattern = re.compile(rf"^{re.escape(stem)}(?:-[^-]+)*?-{re.escape(leaf)}"
                         r"(\d+(?:\.\d+)?)(?:-|$)")
    found = {}
    for m in rows.loc[(rows["test_set"] == dataset) & (rows["train_set"] == dataset), "method"]:
        hit = pattern.match(m)
        if hit or m in aliases:
            found[m] = float(hit.group(1)) if hit else float(aliases[m])
    return sorted((v, m) for m, v in found.items())


def _count(n: float) -> str:
    return MISSING if n is None or pd.isna(n) else f"{float(n) / 1e6:.2f}M"


def rank_ablation_table(summary: pd.DataFrame, params: pd.DataFrame | None = None,
                        dataset: str = "drive", mode: str | None = OUR_MODE,
                        stem: str = "topolora_sam", aliases: Mapping[str, float] = RANK_ALIASES,
                        metrics: Sequence[str] = ("dice", "cldice"),
                        decimals: int = 3) -> pd.DataFrame:
    """LoRA rank sweep on ``dataset``: one row per rank r (parsed from ``<stem>-r<r>-…``
    names; ``aliases`` for the plain methods a value resolves to), ``metrics`` and the
    trainable count (from ``params``, "–" without it)."""
    rows = mode_rows(summary, mode)
    trainable = {} if params is None else dict(zip(params["method"], params["trainable"]))
    records = []
    for r, m in _sweep_rows(rows, dataset, "r", stem, aliases):
        records.append({"Rank r": str(int(r)), "Method": m,
                        **_cells(_lookup(rows, m, dataset), metrics, decimals),
                        "Trainable": _count(trainable.get(m))})
    cols = ["Rank r", "Method", *(_ml(k) for k in metrics), "Trainable"]
    return pd.DataFrame(records, columns=cols).set_index("Rank r")


def cldice_weight_table(summary: pd.DataFrame, datasets: Sequence[str] = ("drive", "chase_db1"),
                        mode: str | None = OUR_MODE, stem: str = "topolora_sam",
                        aliases: Mapping[str, float] = CLDICE_ALIASES,
                        metrics: Sequence[str] = ("dice", "cldice"),
                        decimals: int = 3) -> pd.DataFrame:
    """clDice-weight λ sweep: one row per λ (from ``<stem>-cldice<λ>`` names or
    ``aliases``), ``metrics`` per dataset ("<metric> (<dataset>)")."""
    rows = mode_rows(summary, mode)
    per = {d: dict(_sweep_rows(rows, d, "cldice", stem, aliases)) for d in datasets}
    table = pd.DataFrame(index=pd.Index(sorted({v for p in per.values() for v in p}),
                                        name="λ (clDice)"))
    for d in datasets:
        cells = [_cells(_lookup(rows, per[d][lam], d) if lam in per[d] else None, metrics,
                        decimals) for lam in table.index]
        for k in metrics:
            table[f"{_ml(k)} ({_dl(d)})"] = [c[_ml(k)] for c in cells]
    return table.set_axis(pd.Index([f"{v:g}" for v in table.index], name="λ (clDice)"))


def component_ablation_table(summary: pd.DataFrame, dataset: str = "drive",
                             mode: str | None = OUR_MODE,
                             methods: Sequence[str] = tuple(COMPONENTS),
                             metrics: Sequence[str] = ("dice", "cldice"),
                             decimals: int = 3) -> pd.DataFrame:
    """Component ablation on ``dataset``: per method, which of LoRA / spatial adapter /
    clDice loss it keeps (✓ / ✗; "?" outside :data:`COMPONENTS`) and ``metrics``."""
    rows = mode_rows(summary, mode)
    records = []
    for m in methods:
        parts = COMPONENTS.get(m)
        marks = {k: "?" if parts is None else ("✓" if parts[i] else "✗")
                 for i, k in enumerate(("LoRA", "Adapter", "clDice loss"))}
        records.append({"Method": method_label(m), **marks,
                        **_cells(_lookup(rows, m, dataset), metrics, decimals)})
    return pd.DataFrame(records).set_index("Method")


def transfer_table(summary: pd.DataFrame, train_set: str = "drive",
                   test_sets: Sequence[str] = RETINA, mode: str | None = OUR_MODE,
                   methods: Sequence[str] = ("topolora_sam", "topolora_sam_no_cldice"),
                   metrics: Sequence[str] = ("dice", "cldice"), decimals: int = 3) -> pd.DataFrame:
    """Cross-dataset transfer: trained on ``train_set``, tested on each of ``test_sets``;
    rows (Method, Test set), the in-domain test set marked "(in-domain)"."""
    rows = mode_rows(summary, mode)
    records, index = [], []
    for m in methods:
        for t in test_sets:
            records.append(_cells(_lookup(rows, m, t, train_set=train_set), metrics, decimals))
            name = _dl(t) + (" (in-domain)" if t == train_set else "")
            index.append((method_label(m), name))
    return pd.DataFrame(records, columns=[_ml(k) for k in metrics],
                        index=pd.MultiIndex.from_tuples(index, names=["Method", "Test set"]))
