"""SAM2LoRA's tables and figures from a study's ``results/<study>/summary.csv``.

The summary (:func:`samlora.evaluation.aggregate.aggregate`) has one row per method ×
train set × test set × evaluation ``mode`` × ``prompt`` mode, and for a prompted method a
row ``prompt = all_modes`` (mean over its prompt modes of their means, std over them,
ddof=1). Every function shows one evaluation mode (default ``sam2lora_ref``, the paper's;
``native_fov`` is ours; a summary without a ``mode`` column is all ours). Cells are
strings; a value the summary lacks is "–", never filled in, and ``attrs["missing"]``
lists each absent value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from samlora.reporting.style import use_style
from samlora.reporting.tables import METRIC_LABELS, OUR_MODE, format_mean_std

#: The paper's evaluation mode (:mod:`samlora.evaluation.modes`).
PAPER_MODE = "sam2lora_ref"
#: ``prompt`` of the summary row over all prompt modes (= ``aggregate.ALL_MODES``).
ALL_MODES = "all_modes"
#: Prompt modes in table order (= ``samlora.models.prompts.EVAL_MODES``).
PROMPT_ORDER = ("none", "1pt", "2pt", "5pt", "5pt1neg", "box", "pts_box")
#: Columns of :func:`per_dataset_table`, the paper's per-dataset metrics.
PER_DATASET_METRICS = ("dice", "auc", "sensitivity", "specificity", "accuracy", "hd95", "mcc")
ZERO_SHOT = "sam2lora_zero_shot"
#: The sweeps' base method; a variant equal to it keeps its name (study.method_variants),
#: so its placement and loss are those of params.yaml ``methods.sam2lora``.
BASE_METHOD = "sam2lora"
BASE_TARGETS = ("encoder_attn", "decoder_attn")
BASE_LOSS = {"bce": 1.0, "dice": 1.0, "focal_tversky": 1.0}
TARGET_LABELS = {"encoder_attn": "encoder", "decoder_attn": "decoder"}
LOSS_LABELS = {"bce": "BCE", "dice": "Dice", "focal_tversky": "FocalTversky",
               "cldice": "clDice"}
_RANK = re.compile(r"(?:^|-)r(\d+)(?=-|$)")
_LOSS_PART = re.compile(rf"^({'|'.join(LOSS_LABELS)})(\d+(?:\.\d+)?(?:e[+-]?\d+)?)$")


# --- summary access ---------------------------------------------------------------------

def _in_mode(summary: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Rows of evaluation ``mode`` with a ``prompt`` column (``none`` where it had none)."""
    if "mode" in summary.columns:
        rows = summary[summary["mode"] == mode]
    else:
        rows = summary if mode == OUR_MODE else summary.iloc[:0]
    rows = rows.copy()
    rows["prompt"] = rows["prompt"].fillna("none") if "prompt" in rows else "none"
    return rows.reset_index(drop=True)


class _Cells:
    """Lookup of summary rows by (method, train_set, test_set, prompt); records misses."""

    def __init__(self, rows: pd.DataFrame, mode: str) -> None:
        keys = ["method", "train_set", "test_set", "prompt"]
        dup = rows.duplicated(keys, keep=False)
        if dup.any():
            first = rows.loc[dup, keys].iloc[0].to_dict()
            raise ValueError(f"summary has {int(dup.sum())} rows sharing method, train_set, "
                             f"test_set, prompt in mode {mode}, e.g. {first}")
        self.rows = {tuple(map(str, k)): r for k, r in zip(rows[keys].itertuples(index=False),
                                                           rows.to_dict("records"))}
        self.mode, self.missing = mode, []

    def get(self, method: str, train: str, test: str, prompt: str,
            metric: str) -> tuple[float, float]:
        """(mean, std) of a cell; (nan, nan) and a ``missing`` entry when absent."""
        row = self.rows.get((method, train, test, prompt))
        where = f"{method} / {train} / {test} / prompt {prompt} / {self.mode}"
        if row is None:
            if f"{where}: no summary row" not in self.missing:  # once, not per metric
                self.missing.append(f"{where}: no summary row")
            return math.nan, math.nan
        mean = float(row.get(f"{metric}_mean", math.nan))
        if not math.isfinite(mean):
            self.missing.append(f"{where}: no {metric}")
            return math.nan, math.nan
        return mean, float(row.get(f"{metric}_std", math.nan))


def _default_prompt(rows: pd.DataFrame) -> str:
    return ALL_MODES if (rows["prompt"] == ALL_MODES).any() else "none"


def _train_set(rows: pd.DataFrame, method: str, train_set: str | None) -> str:
    if train_set is not None:
        return train_set
    found = sorted(set(rows.loc[rows["method"] == method, "train_set"].astype(str)))
    if len(found) > 1:
        raise ValueError(f"{method} has several train sets {found}: pass train_set")
    return found[0] if found else ""


def _test_sets(rows: pd.DataFrame, test_sets: Sequence[str] | None) -> list[str]:
    return list(test_sets) if test_sets is not None else list(dict.fromkeys(rows["test_set"]))


def _prompt_modes(rows: pd.DataFrame) -> list[str]:
    present = [p for p in dict.fromkeys(rows["prompt"]) if p != ALL_MODES]
    return sorted(present, key=lambda p: (PROMPT_ORDER.index(p) if p in PROMPT_ORDER
                                          else len(PROMPT_ORDER), p))


# --- tables -------------------------------------------------------------------------------

def per_dataset_table(summary: pd.DataFrame, method: str, mode: str = PAPER_MODE,
                      prompt: str | None = None, train_set: str | None = None,
                      test_sets: Sequence[str] | None = None,
                      metrics: Sequence[str] = PER_DATASET_METRICS,
                      decimals: int = 3) -> pd.DataFrame:
    """The paper's per-dataset table of one method (vessel, disc or cup study).

    ``mode``: evaluation mode; ``prompt``: prompt mode (default ``all_modes`` where the
    method has that row, else ``none``); ``train_set``: needed when the method has several;
    ``test_sets``: rows (default: the method's, in summary order). Index "Test set", a
    column per metric (:data:`METRIC_LABELS`), "mean ± std" (std over seeds, over prompt
    modes for ``all_modes``); ``attrs``: ``missing``, ``prompt``, ``mode``.
    """
    rows = _in_mode(summary, mode)
    mine = rows[rows["method"] == method]
    prompt = prompt or _default_prompt(mine)
    train = _train_set(rows, method, train_set)
    cells = _Cells(rows, mode)
    tests = _test_sets(mine, test_sets)
    table = pd.DataFrame(index=pd.Index(tests, name="Test set"), dtype=object)
    for m in metrics:
        table[METRIC_LABELS.get(m, m)] = [
            format_mean_std(*cells.get(method, train, t, prompt, m), decimals) for t in tests]
    absent = [] if len(mine) else [f"{method}: no row in mode {mode}"]
    table.attrs.update(missing=absent + cells.missing, prompt=prompt, mode=mode)
    return table


def prompt_mode_table(summary: pd.DataFrame, method: str, metric: str = "dice",
                      mode: str = PAPER_MODE, train_set: str | None = None,
                      test_sets: Sequence[str] | None = None,
                      prompts: Sequence[str] | None = None, decimals: int = 3) -> pd.DataFrame:
    """``metric`` of one method per prompt mode (rows, ``all_modes`` last) × test set.

    ``prompts`` default: the method's prompt modes in :data:`PROMPT_ORDER`, then
    ``all_modes`` when present. Cells "mean ± std"; ``attrs["missing"]``.
    """
    rows = _in_mode(summary, mode)
    mine = rows[rows["method"] == method]
    if prompts is None:
        prompts = _prompt_modes(mine) + ([ALL_MODES] if (mine["prompt"] == ALL_MODES).any()
                                         else [])
    train = _train_set(rows, method, train_set)
    cells = _Cells(rows, mode)
    tests = _test_sets(mine, test_sets)
    table = pd.DataFrame(index=pd.Index(list(prompts), name="Prompt"), dtype=object)
    for t in tests:
        table[t] = [format_mean_std(*cells.get(method, train, t, p, metric), decimals)
                    for p in prompts]
    table.columns.name = "Test set"
    table.attrs.update(missing=cells.missing, mode=mode, metric=metric)
    return table


def placement_label(name: str, base: str = BASE_METHOD) -> str | None:
    """"encoder", "decoder", "encoder + decoder" from ``sam2lora-targets=a+b`` (or the base
    method: :data:`BASE_TARGETS`); None for a name that is no placement variant."""
    targets = _placement_targets(name, base)
    return None if targets is None else " + ".join(TARGET_LABELS.get(t, t) for t in targets)


def _placement_targets(name: str, base: str) -> tuple[str, ...] | None:
    if name == base:
        return BASE_TARGETS
    found = re.fullmatch(rf"{re.escape(base)}-targets=([\w+]+)", name)
    return tuple(found.group(1).split("+")) if found else None


def loss_label(name: str, base: str = BASE_METHOD) -> str | None:
    """"BCE", "Dice + FocalTversky", … from ``sam2lora-bce0-dice1-focal_tversky1`` (a
    weight other than 1 is written ``0.5·BCE``); the base method: :data:`BASE_LOSS`;
    None for a name that is no loss variant."""
    weights = _loss_weights(name, base)
    if weights is None:
        return None
    terms = [(f"{w:g}·" if w != 1 else "") + LOSS_LABELS[k] for k, w in weights.items() if w]
    return " + ".join(terms) or "no loss"


def _loss_weights(name: str, base: str) -> dict[str, float] | None:
    if name == base:
        return dict(BASE_LOSS)
    if not name.startswith(f"{base}-"):
        return None
    parts = [_LOSS_PART.match(p) for p in name[len(base) + 1:].split("-")]
    if not parts or not all(parts):
        return None
    return {p.group(1): float(p.group(2)) for p in parts}


def _ablation_labels(summary: pd.DataFrame, label_of, order_of) -> dict[str, str]:
    names = [n for n in dict.fromkeys(summary["method"].astype(str)) if label_of(n)]
    labels = {n: label_of(n) for n in sorted(names, key=order_of)}
    if len(set(labels.values())) < len(labels):
        raise ValueError(f"two methods get one label: {labels}; pass labels")
    return labels


def _ablation_table(summary: pd.DataFrame, labels: Mapping[str, str], metric: str,
                    mode: str, prompt: str | None, decimals: int, name: str) -> pd.DataFrame:
    """Rows = variant labels; columns (train set, test set) plus (train set, "mean")."""
    rows = _in_mode(summary, mode)
    rows = rows[rows["method"].isin(list(labels))]
    prompt = prompt or _default_prompt(rows)
    cells = _Cells(rows, mode)
    groups = {tr: list(dict.fromkeys(rows.loc[rows["train_set"] == tr, "test_set"]))
              for tr in dict.fromkeys(rows["train_set"])}
    columns = [(tr, t) for tr, tests in groups.items() for t in [*tests, "mean"]]
    table = pd.DataFrame(index=pd.Index(list(labels.values()), name=name), dtype=object,
                         columns=pd.MultiIndex.from_tuples(columns,
                                                           names=["Train set", "Test set"]))
    for method, label in labels.items():
        for tr, tests in groups.items():
            values = [cells.get(method, tr, t, prompt, metric) for t in tests]
            for t, v in zip(tests, values):
                table.loc[label, (tr, t)] = format_mean_std(*v, decimals)
            means = [v[0] for v in values]  # the union's mean: only over all its test sets
            table.loc[label, (tr, "mean")] = format_mean_std(
                float(np.mean(means)) if all(map(math.isfinite, means)) else math.nan,
                math.nan, decimals)
    table.attrs.update(missing=cells.missing + [f"{m}: no row in mode {mode}" for m in labels
                                                if m not in set(rows["method"])],
                       prompt=prompt, mode=mode, methods=dict(labels))
    return table


def placement_table(summary: pd.DataFrame, metric: str = "dice", mode: str = PAPER_MODE,
                    prompt: str | None = None, labels: Mapping[str, str] | None = None,
                    base: str = BASE_METHOD, decimals: int = 3) -> pd.DataFrame:
    """LoRA placement ablation: rows "encoder", "decoder", "encoder + decoder" (parsed by
    :func:`placement_label`, or ``labels`` {method: label} in its order), columns
    (Train set, Test set) with "mean ± std" and (Train set, "mean"): the mean over the
    union's test sets, "–" unless all are present. ``prompt`` as in :func:`per_dataset_table`."""
    if labels is None:
        labels = _ablation_labels(
            summary, lambda n: placement_label(n, base),
            lambda n: (len(t := _placement_targets(n, base)),
                       [list(TARGET_LABELS).index(x) if x in TARGET_LABELS else 99 for x in t]))
    return _ablation_table(summary, labels, metric, mode, prompt, decimals, "LoRA placement")


def loss_table(summary: pd.DataFrame, metric: str = "dice", mode: str = PAPER_MODE,
               prompt: str | None = None, labels: Mapping[str, str] | None = None,
               base: str = BASE_METHOD, decimals: int = 3) -> pd.DataFrame:
    """Loss ablation, laid out as :func:`placement_table`; rows "BCE", "Dice", …,
    "BCE + Dice + FocalTversky" (:func:`loss_label`; single terms first)."""
    def order(n: str) -> tuple:
        used = [list(LOSS_LABELS).index(k) for k, w in _loss_weights(n, base).items() if w]
        return len(used), sorted(used)

    if labels is None:
        labels = _ablation_labels(summary, lambda n: loss_label(n, base), order)
    return _ablation_table(summary, labels, metric, mode, prompt, decimals, "Loss")


def trainable_share_table(params: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """Rank → trainable parameters ("1,234,567") and share (%) from
    :func:`samlora.models.params_table.rank_ladder` (``r, lora, pct_of_sam2,
    pct_of_segmenter``; ``trainable``, ``pct`` where ``lora`` is absent). Index "Rank r"
    (int, ascending); a share column per share given; "–" for nan; ``attrs["missing"]``."""
    if "r" not in params.columns:
        raise ValueError(f"params lacks column 'r' (has {list(params.columns)})")
    shares = {k: v for k, v in {"pct_of_sam2": "Share of SAM 2 (%)", "pct_of_segmenter":
                                "Share of segmenter (%)", "pct": "Share (%)"}.items()
              if k in params.columns}
    params = params.sort_values("r")
    table = pd.DataFrame(index=pd.Index(params["r"].astype(int), name="Rank r"), dtype=object)
    missing: list[str] = []
    count = "lora" if "lora" in params.columns else "trainable"
    for col, label, spec in [(count, "Trainable parameters", ","),
                             *((c, lab, f".{decimals}f") for c, lab in shares.items())]:
        values = params[col] if col in params else pd.Series(math.nan, params.index)
        ok = values.notna().to_numpy()
        missing += [f"r {int(r)}: no {col}" for r in params["r"][~ok]]
        table[label] = [format(int(v) if spec == "," else float(v), spec) if good else "–"
                        for v, good in zip(values, ok)]
    table.attrs["missing"] = missing
    return table


# --- rank ablation figure -----------------------------------------------------------------

def lora_rank(name: str) -> int | None:
    """The rank of a sweep variant (``sam2lora-r64-alpha128`` → 64); None without one."""
    found = _RANK.search(name)
    return int(found.group(1)) if found else None


def rank_bars_data(summary: pd.DataFrame, metric: str = "dice", mode: str = PAPER_MODE,
                   zero_shot: str = ZERO_SHOT, prompts: Sequence[str] | None = None,
                   test_sets: Sequence[str] | None = None) -> pd.DataFrame:
    """The numbers of :func:`rank_bars_figure`, computed from the per-prompt-mode rows.

    Per method (zero-shot first, then by rank) and test set: ``mean`` = mean over the
    prompt modes of their ``<metric>_mean``; ``std`` = their standard deviation (ddof=1,
    nan for one mode), as the ``all_modes`` row. ``prompts`` default: every prompt mode in
    the rows (the ``all_modes`` row excluded); a cell lacking one of them (or its value)
    is nan and listed in ``attrs["missing"]``, not averaged over fewer modes. Columns
    ``method, label, rank, test_set, mean, std, n_modes``."""
    rows = _in_mode(summary, mode)
    methods = {m: lora_rank(m) for m in dict.fromkeys(rows["method"].astype(str))}
    ranked = sorted((m for m, r in methods.items() if r is not None), key=lambda m: methods[m])
    if len({methods[m] for m in ranked}) < len(ranked):
        raise ValueError(f"several methods share a rank: {ranked}; keep one per rank")
    order = ([zero_shot] if zero_shot in methods else []) + ranked
    missing = [] if zero_shot in methods else [f"{zero_shot}: no row in mode {mode}"]
    prompts = list(prompts) if prompts is not None else _prompt_modes(
        rows[rows["method"].isin(order)])
    train_of = {m: _train_set(rows, m, None) for m in order}
    cells = _Cells(rows, mode)
    out = []
    for m in order:
        for t in _test_sets(rows[rows["method"].isin(order)], test_sets):
            values = [cells.get(m, train_of[m], t, p, metric)[0] for p in prompts]
            ok = bool(values) and all(map(math.isfinite, values))
            several = ok and len(values) > 1
            out.append({"method": m, "rank": methods[m] if m != zero_shot else pd.NA,
                        "label": "zero-shot" if m == zero_shot else f"r = {methods[m]}",
                        "test_set": t, "mean": float(np.mean(values)) if ok else math.nan,
                        "std": float(np.std(values, ddof=1)) if several else math.nan,
                        "n_modes": len(values) if ok else 0})
    data = pd.DataFrame(out, columns=["method", "label", "rank", "test_set", "mean", "std",
                                      "n_modes"])
    data["rank"] = data["rank"].astype("Int64")
    data.attrs.update(missing=missing + cells.missing, prompts=prompts, mode=mode, metric=metric)
    return data


def rank_bars_figure(summary: pd.DataFrame, metric: str = "dice", mode: str = PAPER_MODE,
                     zero_shot: str = ZERO_SHOT, prompts: Sequence[str] | None = None,
                     test_sets: Sequence[str] | None = None) -> Figure:
    """Grouped bars per test set: zero-shot and each LoRA rank, bar = mean over the prompt
    modes, error bar = their std (:func:`rank_bars_data`); absent bars are not drawn.
    Colours: seaborn's "colorblind" palette. One axis.

    Raises:
        ValueError: the summary has no zero-shot or rank row with a value (nothing to draw).
    """
    import seaborn as sns

    use_style()  # before any figure exists
    data = rank_bars_data(summary, metric, mode, zero_shot, prompts, test_sets)
    if not data["mean"].notna().any():
        raise ValueError(f"no zero-shot or LoRA-rank row with a {metric} value in mode {mode}")
    tests = list(dict.fromkeys(data["test_set"]))
    labels = list(dict.fromkeys(data["label"]))
    fig = Figure(figsize=(max(5.5, 1.2 * len(tests) + 3.0), 3.8), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(labels), 1)
    for i, (label, colour) in enumerate(zip(labels, sns.color_palette("colorblind",
                                                                        len(labels)))):
        part = data[(data["label"] == label) & data["mean"].notna()]
        x = np.array([tests.index(t) for t in part["test_set"]]) - 0.4 + (i + 0.5) * width
        ax.bar(x, part["mean"], width, color=colour, label=label)
        err = part["std"].notna().to_numpy()
        if err.any():
            ax.errorbar(x[err], part["mean"][err], yerr=part["std"][err], fmt="none",
                        ecolor="0.2", capsize=2, linewidth=0.8)
    ax.set_xticks(range(len(tests)), tests)
    ax.set_xlabel("Test set")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    n = len(data.attrs["prompts"])
    ax.set_title(f"{METRIC_LABELS.get(metric, metric)} by LoRA rank\n"
                 f"mean ± std over {n} prompt modes ({mode})", fontsize="medium")
    if labels:
        ax.legend(title="Method", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig
