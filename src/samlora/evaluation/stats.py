"""Uncertainty and paired tests on per-image metric tables (layout of ``metrics_per_image.csv``).

- :func:`bootstrap_ci`: percentile confidence interval of a method's summary value on one
  test set (the mean over seeds of per-seed mean over images, as in the summary table),
  from a two-level bootstrap over seeds and test images.
- :func:`paired_comparisons`: every method against a reference method, test set by test
  set, paired on test case: Wilcoxon signed-rank test, matched-pairs rank-biserial
  correlation, and Holm's correction across all comparisons of the table.
- :func:`holm`: Holm's step-down adjustment of p-values.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata, wilcoxon

from samlora.evaluation.modes import MODE_COLUMN, POOL_COLUMN, decode_pool, pooled_values
from samlora.evaluation.prompt_modes import PROMPT_COLUMN

log = logging.getLogger(__name__)

#: Columns identifying one method × training set × test set (plus ``prompt`` if present).
UNIT_COLUMNS = ("method", "train_set", "test_set")
COMPARISON_COLUMNS = ("test_set", "method", "train_set", "reference", "reference_train_set",
                      "metric", "n", "median_diff", "mean_diff", "ci_low", "ci_high",
                      "effect_size", "p", "p_holm")


def _units(per_image: pd.DataFrame) -> list[str]:
    """The unit columns, plus the evaluation mode and prompt columns where present."""
    return [*UNIT_COLUMNS, *(c for c in (MODE_COLUMN, PROMPT_COLUMN) if c in per_image.columns)]


def seed_case_matrix(per_image: pd.DataFrame, metric: str) -> np.ndarray:
    """Seeds × cases array of ``metric`` (nan where a seed lacks a case or the value is nan)."""
    wide = per_image.pivot_table(index="seed", columns="case", values=metric,
                                 aggfunc="mean", dropna=False)
    return wide.to_numpy(dtype=np.float64)


def bootstrap_replicates(values: np.ndarray, n_resamples: int = 1000,
                         seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the mean over seeds of per-seed mean over images.

    Each replicate draws the seeds (rows of ``values``) with replacement, and the images
    (columns) with replacement once, shared by all seeds of that replicate (the test images
    are one sample common to every seed). nan entries are skipped in the per-seed means,
    as in the summary; a seed left with no value in a replicate is skipped in the mean
    over seeds. Vectorised: image draws become per-image counts (weights).

    Args:
        values: seeds × images array.
        n_resamples: number of replicates.
        seed: seed of the random generator (same seed, same replicates).

    Returns:
        ``n_resamples`` replicate statistics (nan where a replicate has no value at all).
    """
    values = np.asarray(values, dtype=np.float64)
    n_seeds, n_images = values.shape
    rng = np.random.default_rng(seed)
    seed_draw = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    image_draw = rng.integers(0, n_images, size=(n_resamples, n_images))
    offsets = np.arange(n_resamples)[:, None] * n_images
    weights = np.bincount((image_draw + offsets).ravel(),
                          minlength=n_resamples * n_images).reshape(n_resamples, n_images)
    valid = np.isfinite(values)
    filled = np.where(valid, values, 0.0)
    sums = filled @ weights.T.astype(np.float64)           # seeds × replicates
    counts = valid.astype(np.float64) @ weights.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = sums / counts                             # nan where no valid image drawn
    picked = per_seed[seed_draw, np.arange(n_resamples)[:, None]]  # replicates × seeds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(picked, axis=1)


def pooled_bootstrap_ci(per_image: pd.DataFrame, metric: str, n_resamples: int = 1000,
                        seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of a pooled metric (``topolora_ref``'s Dice, ECE, ...).

    The statistic is the mean over seeds of each seed's value pooled over its images (the
    summary's ``<metric>_mean`` for a pooled mode); seeds and images are drawn as in
    :func:`bootstrap_replicates`, and each replicate pools the drawn images' ``pool`` sums.

    Returns:
        ``(low, high)``; ``(nan, nan)`` for an empty table.
    """
    if per_image.empty:
        return float("nan"), float("nan")
    seeds = sorted(set(per_image["seed"]))
    cases = sorted(set(per_image["case"]))
    first = decode_pool(per_image[POOL_COLUMN].iloc[:1])
    comp = np.zeros((len(seeds), len(cases), first.shape[1]))
    s_idx = per_image["seed"].map({s: i for i, s in enumerate(seeds)}).to_numpy()
    c_idx = per_image["case"].map({c: i for i, c in enumerate(cases)}).to_numpy()
    comp[s_idx, c_idx] = decode_pool(per_image[POOL_COLUMN])
    rng = np.random.default_rng(seed)
    seed_draw = rng.integers(0, len(seeds), size=(n_resamples, len(seeds)))
    image_draw = rng.integers(0, len(cases), size=(n_resamples, len(cases)))
    weights = np.stack([np.bincount(row, minlength=len(cases)) for row in image_draw])
    per_seed = np.empty((len(seeds), n_resamples))
    for k in range(len(seeds)):
        sums = weights @ comp[k]                                  # replicates × components
        per_seed[k] = [pooled_values(row)[metric] for row in sums]
    picked = per_seed[seed_draw, np.arange(n_resamples)[:, None]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reps = np.nanmean(picked, axis=1)
    if not np.isfinite(reps).any():
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci(per_image: pd.DataFrame, metric: str, n_resamples: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of one method × test set's mean ``metric``.

    The statistic is the mean over seeds of the per-seed mean over images (the summary's
    ``<metric>_mean``); see :func:`bootstrap_replicates` for the resampling.

    Args:
        per_image: rows of one method, training set and test set (and prompt mode), one
            per seed × case.
        metric: the metric column.
        n_resamples: bootstrap replicates.
        seed: random seed; the result is a function of the table and this seed.
        level: coverage of the interval, in (0, 1).

    Returns:
        ``(low, high)``: the (1-level)/2 and (1+level)/2 quantiles of the replicates;
        ``(nan, nan)`` when the metric has no finite value.

    Raises:
        ValueError: the table spans several methods/test sets, or level is outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    units = [c for c in _units(per_image) if c in per_image.columns]
    spans = [c for c in units if per_image[c].nunique(dropna=False) > 1]
    if spans:
        raise ValueError(f"bootstrap_ci takes one method × test set; the table has several "
                         f"values of {spans}")
    if per_image.empty or not np.isfinite(per_image[metric].to_numpy(dtype=float)).any():
        return float("nan"), float("nan")
    reps = bootstrap_replicates(seed_case_matrix(per_image, metric), n_resamples, seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control).

    With the m finite p-values sorted ascending p_(1) <= ... <= p_(m), the adjusted value
    of p_(i) is max over j <= i of min(1, (m - j + 1)·p_(j)). nan p-values are not counted
    in m and stay nan. Returned in the input order.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def paired_diff_ci(diff: np.ndarray, n_resamples: int = 2000, level: float = 0.95,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of paired differences (cases resampled
    with replacement; same ``seed``, same interval); (nan, nan) with fewer than 2 pairs."""
    d = np.asarray(diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(d.size, np.full(d.size, 1.0 / d.size), size=n_resamples)
    reps = counts @ d / d.size
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


def rank_biserial(diff: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (W+ - W-) / (W+ + W-) of paired differences.

    Ranks are those of |diff| over the non-zero differences (average ranks for ties), as
    in the Wilcoxon test with ``zero_method='wilcox'``. +1: every non-zero difference is
    positive; -1: every one negative; nan when none is non-zero.
    """
    d = np.asarray(diff, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return float("nan")
    ranks = rankdata(np.abs(d))
    w_plus, w_minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((w_plus - w_minus) / (w_plus + w_minus))


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value (``zero_method='wilcox'``: zero differences
    dropped); nan with fewer than 2 non-zero differences."""
    d = np.asarray(diff, dtype=np.float64)
    if np.count_nonzero(d) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on small samples / ties
        return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def _seed_means(per_image: pd.DataFrame, units: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per unit and case, each metric averaged over seeds (nan skipped)."""
    return per_image.groupby([*units, "case"], sort=True, dropna=False)[metrics].mean()


def _reference_for(ref_units: pd.DataFrame, test_set: str, train_set: str,
                   extra: dict) -> tuple | None:
    """The reference unit to pair with: same evaluation mode, and the same training set
    (and prompt mode) where the reference has it on this test set, else its only one there
    (e.g. the human baseline's ``-``, prompt ``none``); None if that is ambiguous or there
    is none."""
    here = ref_units[ref_units["test_set"] == test_set]
    if MODE_COLUMN in extra:  # numbers of two evaluation modes are never paired
        here = here[here[MODE_COLUMN] == extra[MODE_COLUMN]]
    for key, value in extra.items():
        same_mode = here[here[key] == value]
        here = same_mode if len(same_mode) else here
    same = here[here["train_set"] == train_set]
    pick = same if len(same) else here
    if len(pick) != 1:
        return None
    return tuple(pick.iloc[0])


def paired_comparisons(per_image: pd.DataFrame, reference_method: str,
                       metrics: Sequence[str]) -> pd.DataFrame:
    """Each other method against ``reference_method``, per test set and metric.

    Per method (× training set × prompt mode, where present) and test case, the metric is
    averaged over seeds; these are paired on case with the reference's seed-averaged
    values (cases missing or nan on either side are dropped). The reference is the one
    with the same training set on that test set if it has it, else its only one there.

    Columns (:data:`COMPARISON_COLUMNS`, then ``prompt`` if present):

    - ``n``: number of pairs; ``median_diff``: median of method − reference;
    - ``mean_diff``, ``ci_low``, ``ci_high``: their mean and its 95 % percentile bootstrap
      interval over cases (:func:`paired_diff_ci`);
    - ``effect_size``: matched-pairs rank-biserial correlation (:func:`rank_biserial`),
      +1 when the method is higher on every image that differs;
    - ``p``: two-sided Wilcoxon signed-rank p (:func:`wilcoxon_p`);
    - ``p_holm``: Holm-adjusted over every row of the returned table (all test sets,
      methods and metrics of the study form one family).

    Raises:
        ValueError: the reference method is not in the table, or a metric column is absent.
    """
    metrics = list(metrics)
    absent = [m for m in metrics if m not in per_image.columns]
    if absent:
        raise ValueError(f"per-image table lacks metric column(s) {absent}")
    if reference_method not in set(per_image["method"]):
        raise ValueError(f"reference method {reference_method!r} is not in the table; "
                         f"methods: {sorted(set(per_image['method']))}")
    units = _units(per_image)
    extra_cols = units[len(UNIT_COLUMNS):]
    means = _seed_means(per_image, units, metrics)
    all_units = means.index.droplevel("case").unique().to_frame(index=False)
    ref_units = all_units[all_units["method"] == reference_method]
    rows = []
    for unit in all_units.itertuples(index=False, name=None):
        info = dict(zip(units, unit))
        if info["method"] == reference_method:
            continue
        extra = {k: info[k] for k in extra_cols}
        ref = _reference_for(ref_units, info["test_set"], info["train_set"], extra)
        if ref is None:
            log.warning("%s: no unique %s reference on %s; not compared", "/".join(unit),
                        reference_method, info["test_set"])
            continue
        mine, theirs = means.loc[unit], means.loc[ref]
        for metric in metrics:
            if not mine[metric].notna().any():  # a metric this evaluation mode lacks
                continue
            pair = pd.concat([mine[metric], theirs[metric]], axis=1, join="inner").dropna()
            diff = (pair.iloc[:, 0] - pair.iloc[:, 1]).to_numpy()
            low, high = paired_diff_ci(diff)
            rows.append({"test_set": info["test_set"], "method": info["method"],
                         "train_set": info["train_set"], "reference": reference_method,
                         "reference_train_set": dict(zip(units, ref))["train_set"],
                         "metric": metric, "n": int(diff.size),
                         "median_diff": float(np.median(diff)) if diff.size else float("nan"),
                         "mean_diff": float(diff.mean()) if diff.size else float("nan"),
                         "ci_low": low, "ci_high": high,
                         "effect_size": rank_biserial(diff), "p": wilcoxon_p(diff), **extra})
    table = pd.DataFrame(rows, columns=[*COMPARISON_COLUMNS[:-1], *extra_cols])
    table.insert(len(COMPARISON_COLUMNS) - 1, "p_holm", holm(table["p"].to_numpy(float)))
    return table
