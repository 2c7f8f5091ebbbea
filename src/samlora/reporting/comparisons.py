"""Tables and figures neither paper has: paired comparisons with intervals, topology errors
beside clDice, the head-to-head of both papers' methods, and one run's numbers in each
evaluation mode and at each fidelity level.

Inputs are a study's ``results/<study>/summary.csv`` (mean ± std over seeds) and
``comparisons.csv`` (:func:`samlora.evaluation.stats.paired_comparisons`). A cell without a
row is "–" and the pairs without a row are listed in ``attrs["missing"]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from samlora.reporting.style import PALETTE, use_style
from samlora.reporting.tables import METRIC_LABELS, OUR_MODE, format_mean_std, mode_rows
from samlora.reporting.topolora import LOWER_IS_BETTER

#: Suffix of a method trained as its paper's code does (``samlora.study.studies``).
REFERENCE_SUFFIX = "-ref"
HUMAN = "human"
MISSING = "–"
#: Significance level the comparisons table marks (on Holm-adjusted p).
ALPHA = 0.05


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return MISSING
    return f"{p:.2e}" if p < 0.01 else f"{p:.3f}"


def comparisons_table(comparisons: pd.DataFrame, metrics: Sequence[str] | None = None,
                      mode: str | None = OUR_MODE, decimals: int = 3) -> pd.DataFrame:
    """Every method against the study's reference: the paired difference per test set
    and metric, its 95 % bootstrap interval, the effect size and Holm-adjusted p.

    Args:
        comparisons: ``comparisons.csv`` as read by pandas.
        metrics: metric ids to keep (default: all in the file, in :data:`METRIC_LABELS`
            order).
        mode: evaluation mode of the rows (None: every mode, as an index level).
        decimals: digits of the differences.

    Returns:
        Index (Test set, Method, Train set, Metric[, Mode]); string columns ``n``,
        ``Δ mean [95 % CI]``, ``Δ median``, ``Effect size`` (rank-biserial), ``p``,
        ``p (Holm)`` and ``Significant`` ("yes" where p (Holm) < :data:`ALPHA`). The
        reference method is named in ``attrs["reference"]``.
    """
    rows = mode_rows(comparisons, mode)
    known = [m for m in METRIC_LABELS if m in set(rows["metric"])]
    keep = list(metrics) if metrics is not None else known
    rows = rows[rows["metric"].isin(keep)]
    order = {m: i for i, m in enumerate(keep)}
    rows = rows.assign(_o=rows["metric"].map(order)).sort_values(
        ["test_set", "method", "train_set", "_o"], kind="stable")
    records, index = [], []
    with_mode = mode is None and "mode" in rows.columns
    for r in rows.itertuples(index=False):
        ci = (f"{r.mean_diff:+.{decimals}f} [{r.ci_low:+.{decimals}f}, {r.ci_high:+.{decimals}f}]"
              if all(math.isfinite(v) for v in (r.mean_diff, r.ci_low, r.ci_high))
              else MISSING if not math.isfinite(r.mean_diff) else f"{r.mean_diff:+.{decimals}f}")
        records.append({
            "n": str(int(r.n)), "Δ mean [95 % CI]": ci,
            "Δ median": MISSING if not math.isfinite(r.median_diff)
            else f"{r.median_diff:+.{decimals}f}",
            "Effect size": MISSING if not math.isfinite(r.effect_size)
            else f"{r.effect_size:+.2f}",
            "p": _p(r.p), "p (Holm)": _p(r.p_holm),
            "Significant": "yes" if math.isfinite(r.p_holm) and r.p_holm < ALPHA else "no"})
        index.append((r.test_set, r.method, r.train_set, _label(r.metric),
                      *((r.mode,) if with_mode else ())))
    names = ["Test set", "Method", "Train set", "Metric", *(["Mode"] if with_mode else [])]
    cols = ["n", "Δ mean [95 % CI]", "Δ median", "Effect size", "p", "p (Holm)", "Significant"]
    table = pd.DataFrame(records, columns=cols, index=pd.MultiIndex.from_tuples(
        index, names=names) if index else pd.MultiIndex.from_arrays([[]] * len(names),
                                                                    names=names))
    refs = sorted(set(comparisons["reference"])) if "reference" in comparisons else []
    table.attrs["reference"] = ", ".join(map(str, refs))
    return table


def _cell(row: pd.Series | None, metric: str, decimals: int) -> str:
    if row is None:
        return MISSING
    mean, std = row.get(f"{metric}_mean", math.nan), row.get(f"{metric}_std", math.nan)
    return format_mean_std(mean if pd.notna(mean) else math.nan,
                           std if pd.notna(std) else math.nan, decimals)


def topology_table(summary: pd.DataFrame, mode: str | None = OUR_MODE,
                   metrics: Sequence[str] = ("dice", "cldice", "betti0_error", "betti1_error"),
                   decimals: int = 3) -> pd.DataFrame:
    """Topology beside overlap: per method × train set × test set, clDice next to the
    Betti-0 (components) and Betti-1 (loops) errors, with Dice for reference.

    Returns:
        Index (Method, Train set, Test set), one "mean ± std" column per metric the
        summary has; rows in summary order. ``attrs["missing"]`` lists the metrics the
        summary lacks (a study whose evaluation leaves them out).
    """
    rows = mode_rows(summary, mode)
    have = [m for m in metrics if f"{m}_mean" in rows.columns]
    index = pd.MultiIndex.from_frame(rows[["method", "train_set", "test_set"]].astype(str),
                                     names=["Method", "Train set", "Test set"])
    table = pd.DataFrame({_label(m): [_cell(r, m, decimals) for _, r in rows.iterrows()]
                          for m in have}, index=index)
    table.attrs["missing"] = [m for m in metrics if m not in have]
    return table


def _one(rows: pd.DataFrame, method: str, train_set: str, test_set: str) -> pd.Series | None:
    hit = rows[(rows["method"] == method) & (rows["train_set"] == train_set)
               & (rows["test_set"] == test_set)]
    return None if hit.empty else hit.iloc[0]


def protocols_of(summary: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """The (train set, test sets) pairs of a summary's runs, in its order (human rows,
    which have no train set, left out)."""
    rows = summary[summary["method"] != HUMAN]
    found: dict[str, list[str]] = {}
    for train, test in zip(rows["train_set"], rows["test_set"]):
        tests = found.setdefault(str(train), [])
        if test not in tests:
            tests.append(str(test))
    return list(found.items())


def head_to_head_table(summary: pd.DataFrame,
                       protocols: Sequence[tuple[str, Sequence[str]]] | None = None,
                       methods: Sequence[str] | None = None, metric: str = "dice",
                       mode: str | None = OUR_MODE, decimals: int = 3) -> pd.DataFrame:
    """Both papers' methods under one protocol: ``metric`` per method (rows) and
    (train set → test set) column, the rank of each method in each column (1 = best),
    and the mean rank over the columns it has.

    Args:
        summary: the study's summary.
        protocols: ``(train_set, test_sets)`` pairs, e.g. ``[("drive", ["drive", "stare"]),
            ("refuge2", ["refuge2", "origa"])]`` (default :func:`protocols_of`).
        methods: rows (default: every non-human method of the summary, in its order).

    Returns:
        String cells "mean ± std (rank)"; column "Mean rank"; a last row ``human`` (the
        second observer on each test set, not ranked) where the summary has one;
        ``attrs["missing"]`` the
        (method, train set, test set) triples without a row; ``attrs["ranks"]`` the
        numeric ranks.
    """
    rows = mode_rows(summary, mode)
    if methods is None:
        methods = [m for m in dict.fromkeys(rows["method"]) if m != HUMAN]
    protocols = protocols_of(rows) if protocols is None else protocols
    columns = [(t, s) for t, tests in protocols for s in tests]
    means = pd.DataFrame(index=list(methods), dtype=float)
    cells, missing = {}, []
    for train, test in columns:
        col = f"{train} → {test}"
        vals = []
        for m in methods:
            row = _one(rows, m, train, test)
            missing += [(m, train, test)] if row is None else []
            cells[m, col] = _cell(row, metric, decimals)
            mean = row.get(f"{metric}_mean", math.nan) if row is not None else math.nan
            vals.append(float(mean) if pd.notna(mean) else math.nan)
        means[col] = vals
    lower = metric in LOWER_IS_BETTER
    ranks = means.rank(axis=0, ascending=lower, method="min")
    table = pd.DataFrame(index=pd.Index(list(methods), name="Method"))
    for col in means.columns:
        table[col] = [cells[m, col] + ("" if pd.isna(ranks.loc[m, col])
                                       else f" ({int(ranks.loc[m, col])})") for m in methods]
    mean_rank = ranks.mean(axis=1, skipna=True)
    table["Mean rank"] = [MISSING if pd.isna(v) else f"{v:.2f}" for v in mean_rank]
    human = rows[rows["method"] == HUMAN]
    if not human.empty:  # the second observer on each test set: shown, never ranked
        by_test = human.drop_duplicates("test_set").set_index("test_set")
        table.loc[HUMAN] = [*(_cell(by_test.loc[test] if test in by_test.index else None,
                                    metric, decimals) for _, test in columns), MISSING]
    table.attrs["missing"] = missing
    table.attrs["ranks"] = ranks
    return table


def head_to_head_figure(summary: pd.DataFrame,
                        protocols: Sequence[tuple[str, Sequence[str]]] | None = None,
                        methods: Sequence[str] | None = None, metric: str = "dice",
                        mode: str | None = OUR_MODE) -> Figure:
    """Grouped bars: one group per (train set → test set), one bar per method (mean over
    seeds; error bar: std over seeds); a missing run leaves its bar out.

    Raises:
        ValueError: no method has a value in any column.
    """
    use_style()
    rows = mode_rows(summary, mode)
    if methods is None:
        methods = [m for m in dict.fromkeys(rows["method"]) if m != HUMAN]
    protocols = protocols_of(rows) if protocols is None else protocols
    columns = [(t, s) for t, tests in protocols for s in tests]
    values = np.full((len(methods), len(columns)), np.nan)
    errors = np.full_like(values, np.nan)
    for i, m in enumerate(methods):
        for j, (train, test) in enumerate(columns):
            row = _one(rows, m, train, test)
            if row is not None:
                values[i, j] = row.get(f"{metric}_mean", np.nan)
                errors[i, j] = row.get(f"{metric}_std", np.nan)
    if not np.isfinite(values).any():
        raise ValueError(f"no method has a {metric} value in any of {columns}")
    fig = Figure(figsize=(max(6.0, 1.1 * len(columns) * max(1, len(methods)) / 3 + 2), 4.0),
                 layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(columns))
    for i, m in enumerate(methods):
        have = np.isfinite(values[i])
        ax.bar((x + (i - (len(methods) - 1) / 2) * width)[have], values[i][have], width,
               yerr=np.nan_to_num(errors[i][have]), capsize=2,
               color=PALETTE[i % len(PALETTE)], label=m)
    ax.set_xticks(x, [f"{t} → {s}" for t, s in columns], rotation=20, ha="right")
    ax.set_ylabel(f"{_label(metric)} (mean ± std over seeds)")
    ax.legend(fontsize="small", ncols=2)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def fidelity_table(summary: pd.DataFrame, method: str | None = None,
                   train_set: str | None = None, test_set: str | None = None,
                   metrics: Sequence[str] | None = None, decimals: int = 3) -> pd.DataFrame:
    """One run's numbers in each evaluation mode (ours and each paper's) and at each
    fidelity level (trained as samlora corrects it, and as the paper's code does).

    Args:
        summary: a study's summary with ``mode`` rows.
        method: the corrected method (its reference twin is ``<method>-ref``); default the
            first method of the summary that has a twin.
        train_set, test_set: the pair shown (default the first in-domain pair of the
            method, else its first).
        metrics: metric ids (default every metric with a value).

    Returns:
        Index Metric; columns (Fidelity, Mode) with "corrected"/"reference" and the modes
        found, cells "mean ± std". ``attrs["run"]`` names what is shown.

    Raises:
        ValueError: no method of the summary has a ``-ref`` twin, or the pair has no row.
    """
    rows = summary[summary["method"] != HUMAN]
    if "prompt" in rows.columns:
        rows = rows[rows["prompt"].fillna("none") == "none"]
    names = list(dict.fromkeys(rows["method"]))
    twins = [m for m in names if not m.endswith(REFERENCE_SUFFIX)
             and m + REFERENCE_SUFFIX in names]
    if method is None:
        if not twins:
            raise ValueError("no method of the summary has a '-ref' twin (a study method "
                             "with fidelity: reference)")
        method = twins[0]
    mine = rows[rows["method"] == method]
    if train_set is None or test_set is None:
        pairs = list(dict.fromkeys(zip(mine["train_set"], mine["test_set"])))
        if not pairs:
            raise ValueError(f"no summary row for method {method!r}")
        in_domain = [p for p in pairs if p[0] == p[1]]
        train_set, test_set = (in_domain or pairs)[0]
    here = rows[(rows["train_set"] == train_set) & (rows["test_set"] == test_set)]
    if "mode" not in here.columns:
        here = here.assign(mode=OUR_MODE)
    modes = list(dict.fromkeys([OUR_MODE, *here["mode"].fillna(OUR_MODE)]))
    levels = [("corrected", method), ("reference", method + REFERENCE_SUFFIX)]
    if metrics is None:
        metrics = [m for m in METRIC_LABELS if f"{m}_mean" in here.columns
                   and here[f"{m}_mean"].notna().any()]
    table = pd.DataFrame(index=pd.Index([_label(m) for m in metrics], name="Metric"))
    for level, name in levels:
        for mode in modes:
            hit = here[(here["method"] == name) & (here["mode"].fillna(OUR_MODE) == mode)]
            row = None if hit.empty else hit.iloc[0]
            table[(level, mode)] = [_cell(row, m, decimals) for m in metrics]
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["Fidelity", "Mode"])
    table.attrs["run"] = f"{method} (and {method}{REFERENCE_SUFFIX}), {train_set} → {test_set}"
    return table
