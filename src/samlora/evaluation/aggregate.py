"""Aggregate per-image metrics: mean over images within a seed, then mean ± std over seeds.

Test cases a run predicted but could not score (no reference label in the release, see
:mod:`samlora.evaluation.evaluate`) are counted from the ``predictions.json`` beside each
per-image table; where there are any, the summary gains ``n_unscored`` and
``unscored_note`` (``unscored`` and ``note`` in the nested JSON), and a train/test pair
with no scored case at all still gets its row (metrics empty, ``n_images`` 0).

The summary also carries a bootstrap confidence interval of each metric's mean
(``<metric>_ci_low``, ``<metric>_ci_high``, appended after the other columns; see
:func:`samlora.evaluation.stats.bootstrap_ci`), and :func:`write_comparisons` writes the
paired tests of every method against a reference
(:func:`samlora.evaluation.stats.paired_comparisons`).
"""

from __future__ import annotations

import glob
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from samlora.evaluation.evaluate import META_COLUMNS
from samlora.evaluation.modes import (
    DEFAULT_MODE,
    MODE_COLUMN,
    MODES,
    POOL_COLUMN,
    decode_pool,
    pooled_values,
)
from samlora.evaluation.prompt_modes import NO_PROMPT, PROMPT_COLUMN
from samlora.evaluation.provenance import add_selected, read_selected
from samlora.evaluation.stats import bootstrap_ci, paired_comparisons, pooled_bootstrap_ci
from samlora.utils.io import atomic_path, write_json

log = logging.getLogger(__name__)

#: One summary row per combination of these.
GROUP_COLUMNS = ("method", "train_set", "test_set")
_ID_COLUMNS = (*META_COLUMNS, "case")
#: Summary columns added when some run has test cases it predicted but did not score.
UNSCORED_COLUMNS = ("n_unscored", "unscored_note")


def expand_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Turn a glob pattern (``**`` allowed), a path or a list of paths into sorted paths.

    Raises:
        FileNotFoundError: a glob matches nothing or a listed file does not exist.
    """
    if isinstance(paths, (str, Path)):
        text = str(paths)
        if glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not found:
                raise FileNotFoundError(f"no per-image metrics file matches {text}")
            return found
        paths = [text]
    out = [Path(p) for p in paths]
    absent = [str(p) for p in out if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"per-image metrics file(s) not found: {', '.join(absent)}")
    return out


def metric_columns(per_image: pd.DataFrame) -> list[str]:
    """Numeric columns that are not run identity or case: the metrics, in file order."""
    return [c for c in per_image.columns if c not in (*_ID_COLUMNS, *_LABEL_COLUMNS)
            and pd.api.types.is_numeric_dtype(per_image[c])]


#: String columns that are neither identity nor metric.
_LABEL_COLUMNS = (MODE_COLUMN, PROMPT_COLUMN, POOL_COLUMN)


def _with_prompt(columns: Sequence[str], per_image: pd.DataFrame) -> list[str]:
    """``columns`` plus the evaluation-mode column and the prompt column, where the table
    has them (every table read by :func:`read_per_image` has ``mode``)."""
    return [*columns, *(c for c in (MODE_COLUMN, PROMPT_COLUMN) if c in per_image.columns)]


def read_per_image(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Read and concatenate per-image CSVs written by ``evaluate_predictions``.

    Args:
        paths: a glob pattern, one path, or a list of paths.

    Returns:
        One row per (method, train_set, test_set, seed, case), and per prompt mode when some
        file has a ``prompt`` column (rows of files without one get ``none``); identity
        columns as str.

    Raises:
        ValueError: no file given, a file lacks an identity column, or a row appears twice.
    """
    files = expand_paths(paths)
    if not files:
        raise ValueError("no per-image metrics files given")
    frames = []
    for path in files:
        frame = pd.read_csv(path, dtype={c: str for c in (*_ID_COLUMNS, *_LABEL_COLUMNS)},
                            keep_default_na=True)
        missing = [c for c in _ID_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path} lacks column(s) {missing}")
        if frame.empty:  # every test case unscored: keep the metric columns numeric
            frame = frame.astype({c: float for c in frame.columns
                                  if c not in (*_ID_COLUMNS, *_LABEL_COLUMNS)})
        if MODE_COLUMN not in frame.columns:  # written before evaluation modes existed
            frame.insert(frame.columns.get_loc("case"), MODE_COLUMN, DEFAULT_MODE)
        frames.append(frame)
    filled = [f for f in frames if not f.empty]
    table = pd.concat(filled or frames[:1], ignore_index=True)
    if PROMPT_COLUMN in table.columns:
        table[PROMPT_COLUMN] = table[PROMPT_COLUMN].fillna(NO_PROMPT)
    table[MODE_COLUMN] = table[MODE_COLUMN].fillna(DEFAULT_MODE)
    unknown = sorted(set(table[MODE_COLUMN]) - set(MODES))
    if unknown:
        raise ValueError(f"per-image tables name unknown evaluation mode(s) {unknown}; "
                         f"known: {list(MODES)}")
    ids = _with_prompt(_ID_COLUMNS, table)
    dup = table.duplicated(ids, keep=False)
    if dup.any():
        first = table.loc[dup, ids].iloc[0].to_dict()
        raise ValueError(f"{int(dup.sum())} duplicated per-image rows, e.g. {first}: "
                         "was a file listed twice?")
    return table


def summarize_runs(per_image: pd.DataFrame) -> pd.DataFrame:
    """Summary table from a per-image table (see :func:`aggregate` for its columns)."""
    metrics = metric_columns(per_image)
    keys = _with_prompt(GROUP_COLUMNS, per_image)
    per_seed = per_image.groupby([*keys, "seed"], sort=True)[metrics].mean()
    per_seed = _pool_per_seed(per_image, per_seed, keys)
    counts = per_image.groupby([*keys, "seed"], sort=True)["case"].nunique()
    for key, group in counts.groupby(level=keys):
        if group.nunique() > 1:
            log.warning("%s: seeds were evaluated on different numbers of images: %s",
                        "/".join(key), group.to_dict())
    stats = per_seed.groupby(level=keys, sort=True)[metrics].agg(["mean", "std"])
    stats.columns = [f"{m}_{s}" for m, s in stats.columns]
    stats["n_seeds"] = per_seed.groupby(level=keys).size()
    stats["n_images"] = per_image.groupby(keys)["case"].nunique()
    return stats.reset_index()


def _pool_per_seed(per_image: pd.DataFrame, per_seed: pd.DataFrame,
                   keys: list[str]) -> pd.DataFrame:
    """``per_seed`` with a pooled mode's pooled metrics replaced by each seed's value
    pooled over its images (``pool`` sums), instead of the mean over images."""
    for name, mode in MODES.items():
        rows = per_image[per_image[MODE_COLUMN] == name]
        if not mode.pooled or rows.empty or POOL_COLUMN not in rows.columns:
            continue
        for key, group in rows.groupby([*keys, "seed"], sort=False):
            values = pooled_values(decode_pool(group[POOL_COLUMN]).sum(axis=0))
            for metric in mode.pooled:
                if metric in per_seed.columns:
                    per_seed.loc[tuple(key), metric] = values[metric]
    return per_seed


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not readable JSON ({err}); run the step that writes it "
                         "again") from None
    return data if isinstance(data, dict) else {}


def read_unscored(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Per run and test set, the predicted test cases its per-image table does not score.

    The predicted cases come from the ``predictions.json`` beside each per-image CSV (a
    CSV without one counts nothing); the note from the ``metrics.json`` there, if any.

    Returns:
        Columns ``method, train_set, test_set, seed, n_unscored, unscored_note``; one row
        per CSV with unscored cases.
    """
    rows = []
    for path in expand_paths(paths):
        pred_path = path.with_name("predictions.json")
        if not pred_path.is_file():
            continue
        pred = _read_json(pred_path)
        scored = set(pd.read_csv(path, dtype={"case": str}, usecols=["case"])["case"])
        unscored = sorted(set(map(str, pred.get("cases", []))) - scored)
        if not unscored:
            continue
        metrics_path = path.with_name("metrics.json")
        summary = _read_json(metrics_path) if metrics_path.is_file() else {}
        meta = {**{k: pred.get(k) for k in META_COLUMNS}, **(summary.get("meta") or {})}
        note = summary.get("note") or (f"{len(unscored)} test case(s) have no reference label; "
                                       "predicted, not scored")
        rows.append({**{k: str(meta[k]) for k in META_COLUMNS}, "n_unscored": len(unscored),
                     "unscored_note": note})
    return pd.DataFrame(rows, columns=[*META_COLUMNS, *UNSCORED_COLUMNS])


def add_unscored(summary: pd.DataFrame, unscored: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with :data:`UNSCORED_COLUMNS` (most unscored cases over seeds, and the
    note) and a row for each train/test pair that scored nothing; unchanged without any."""
    if unscored.empty:
        return summary
    per_group = unscored.groupby(list(GROUP_COLUMNS), sort=True).agg(
        n_unscored=("n_unscored", "max"), unscored_note=("unscored_note", "first"),
        seeds=("seed", "nunique")).reset_index()
    out = summary.merge(per_group, on=list(GROUP_COLUMNS), how="outer", sort=True)
    new = out["n_images"].isna()
    out.loc[new, "n_images"] = 0
    out.loc[new, "n_seeds"] = out.loc[new, "seeds"]
    if PROMPT_COLUMN in out.columns:
        out.loc[new, PROMPT_COLUMN] = NO_PROMPT
    if MODE_COLUMN in out.columns:
        out.loc[new, MODE_COLUMN] = DEFAULT_MODE
    out["n_unscored"] = out["n_unscored"].fillna(0).astype(int)
    out["unscored_note"] = out["unscored_note"].fillna("")
    out[["n_seeds", "n_images"]] = out[["n_seeds", "n_images"]].astype(int)
    for key, note in zip(per_group[list(GROUP_COLUMNS)].itertuples(index=False),
                         per_group["unscored_note"]):
        log.warning("%s: %s", "/".join(key), note)
    return out[[*summary.columns, *UNSCORED_COLUMNS]]


def add_cis(summary: pd.DataFrame, per_image: pd.DataFrame, n_resamples: int = 1000,
            seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """``summary`` with ``<metric>_ci_low, <metric>_ci_high`` per metric appended after its
    columns (metric order of ``per_image``); nan for a row with no scored image.

    Each row's interval is :func:`~samlora.evaluation.stats.bootstrap_ci` over that row's
    per-image rows (seeds and images resampled), with ``n_resamples`` replicates, random
    seed ``seed`` (the same for every row) and coverage ``level``.
    """
    metrics = metric_columns(per_image)
    keys = _with_prompt(GROUP_COLUMNS, summary)
    ci_cols = [f"{m}_ci_{end}" for m in metrics for end in ("low", "high")]
    found: dict[tuple, dict[str, float]] = {}
    for key, group in per_image.groupby(_with_prompt(GROUP_COLUMNS, per_image), sort=False):
        values = {}
        pooled = MODES[str(group[MODE_COLUMN].iloc[0])].pooled if MODE_COLUMN in group else ()
        for m in metrics:
            ci = pooled_bootstrap_ci if m in pooled else bootstrap_ci
            values[f"{m}_ci_low"], values[f"{m}_ci_high"] = ci(
                group, m, n_resamples=n_resamples, seed=seed, level=level)
        found[tuple(key)] = values
    nan_row = dict.fromkeys(ci_cols, float("nan"))
    rows = [found.get(tuple(r), nan_row) for r in summary[keys].itertuples(index=False)]
    cis = pd.DataFrame(rows, columns=ci_cols, index=summary.index)
    return pd.concat([summary, cis], axis=1)


def write_comparisons(per_image_csvs: str | Path | Sequence[str | Path], reference_method: str,
                      out_csv: Path, metrics: Sequence[str] | None = None,
                      modes: Sequence[str] | None = None,
              native_metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Paired tests of every method against ``reference_method``, written atomically.

    Args:
        per_image_csvs: per-image CSVs (or a glob), as for :func:`aggregate`; may include
            a human-baseline table (:mod:`samlora.evaluation.human`).
        reference_method: the method the others are compared with (e.g. ``human``).
        out_csv: the comparison table (columns of
            :func:`~samlora.evaluation.stats.paired_comparisons`).
        metrics: metric columns to compare; default every metric of the tables.
        modes: evaluation modes kept (None: all); methods are paired within a mode.

    Returns:
        The table written to ``out_csv``.
    """
    per_image = select_modes(read_per_image(per_image_csvs), modes)
    names = list(metrics) if metrics is not None else metric_columns(per_image)
    table = paired_comparisons(per_image, reference_method, names)
    with atomic_path(Path(out_csv)) as tmp:
        table.to_csv(tmp, index=False)
    log.info("wrote %d paired comparisons against %s to %s", len(table), reference_method,
             out_csv)
    return table


#: The ``prompt`` value of the row summarising a prompted method over its evaluation modes.
ALL_MODES = "all_modes"


def add_mode_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """For each prompted method × train × test set, a row ``prompt = all_modes``: the mean
    over its evaluation modes of their means (``<metric>_mean``) and the standard deviation
    over the modes (``<metric>_std``, ddof=1), as SAM2LoRA reports its ablations; seeds and
    images as in the modes' rows. A summary without a prompt column is returned as it is."""
    if PROMPT_COLUMN not in summary.columns:
        return summary
    metrics = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
    groups = [*GROUP_COLUMNS, *([MODE_COLUMN] if MODE_COLUMN in summary.columns else [])]
    rows = []
    for keys, group in summary.groupby(groups, sort=False):
        if len(group) < 2:
            continue
        row = {**dict(zip(groups, keys)), PROMPT_COLUMN: ALL_MODES}
        for m in metrics:
            values = group[f"{m}_mean"].astype(float)
            row[f"{m}_mean"], row[f"{m}_std"] = values.mean(), values.std(ddof=1)
        row["n_seeds"], row["n_images"] = group["n_seeds"].max(), group["n_images"].max()
        rows.append(row)
    if not rows:
        return summary
    return pd.concat([summary, pd.DataFrame(rows)], ignore_index=True)[summary.columns]


def summary_to_nested(summary: pd.DataFrame,
                      native_metrics: Sequence[str] | None = None) -> dict[str, dict]:
    """``{method: {train_set: {test_set: {metric: mean, metric_std: std, n_seeds, n_images}}}}``.

    DVC flattens this to keys such as ``topolora_sam.drive.chase_db1.dice``; nan is None.
    A prompted mode's leaf sits inside the prompt-free one as ``prompt_<mode>``
    (``sam2lora.drive.drive.prompt_box.dice``); an evaluation mode other than
    ``native_fov`` inside it as ``mode_<mode>`` (``...drive.mode_topolora_ref.dice``), its
    prompt modes inside that. A leaf holds the metrics its mode computes: its own list for
    a paper's mode, ``native_metrics`` (``evaluate.metrics``; default every metric of the
    summary) for ours.
    """
    metrics = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
    computed = {name: [m for m in mode.metric_names(native_metrics or metrics) if m in metrics]
                for name, mode in MODES.items()}  # the metrics each mode computes
    out: dict[str, dict] = {}
    for row in summary.to_dict("records"):
        leaf: dict[str, float | int | None] = {}
        eval_mode = str(row.get(MODE_COLUMN, DEFAULT_MODE))
        for m in metrics:
            if m not in computed.get(eval_mode, metrics):
                continue
            leaf[m] = _json_float(row[f"{m}_mean"])
            leaf[f"{m}_std"] = _json_float(row[f"{m}_std"])
        leaf["n_seeds"] = int(row["n_seeds"])
        leaf["n_images"] = int(row["n_images"])
        if int(row.get("n_unscored", 0) or 0) > 0:
            leaf["unscored"] = int(row["n_unscored"])
            leaf["note"] = str(row["unscored_note"])
        node = out.setdefault(row["method"], {}).setdefault(row["train_set"], {}) \
            .setdefault(row["test_set"], {})
        if eval_mode != DEFAULT_MODE:
            node = node.setdefault(f"mode_{eval_mode}", {})
        mode = row.get(PROMPT_COLUMN, NO_PROMPT)
        if mode == NO_PROMPT:
            node.update(leaf)
        else:
            node[f"prompt_{mode}"] = leaf
    return out


def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def select_modes(per_image: pd.DataFrame, modes: Sequence[str] | None) -> pd.DataFrame:
    """The rows of the evaluation ``modes`` (None: all); ValueError when one is absent."""
    if modes is None:
        return per_image
    missing = [m for m in modes if m not in set(per_image[MODE_COLUMN])]
    if missing:
        raise ValueError(f"evaluation mode(s) {missing} are not in the per-image tables "
                         f"(they hold {sorted(set(per_image[MODE_COLUMN]))}); add them to "
                         "evaluate.modes and evaluate again")
    return per_image[per_image[MODE_COLUMN].isin(list(modes))].reset_index(drop=True)


def aggregate(per_image_csvs: Sequence[Path], out_csv: Path, out_json: Path,
              n_resamples: int = 1000, ci_seed: int = 0, ci_level: float = 0.95,
              modes: Sequence[str] | None = None,
              native_metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Summarise per-image metrics over images, then over seeds, and write them atomically.

    For each (method, train_set, test_set) and each metric: the mean over images is taken
    per seed (images with nan, e.g. a one-class AUC, are skipped), then the mean and the
    sample standard deviation (ddof=1; nan for a single seed) over seeds.

    Args:
        per_image_csvs: ``metrics_per_image.csv`` files (or a glob pattern).
        out_csv: summary table; columns ``method, train_set, test_set`` (and ``prompt``
            when a prompted method is among the inputs), then ``<metric>_mean,
            <metric>_std`` per metric, ``n_seeds``, ``n_images``.
        out_json: DVC metrics file, nested as in :func:`summary_to_nested`.

    Where some run predicted test cases it could not score, ``out_csv`` also has
    ``n_unscored`` and ``unscored_note`` (see :func:`add_unscored`). Then come
    ``selected_by, selected_epochs, selected_steps, selected_scores`` (the weights each
    seed kept, :mod:`samlora.evaluation.provenance`) where predictions record them. Last
    come ``<metric>_ci_low, <metric>_ci_high`` per metric (see :func:`add_cis`: a bootstrap
    interval of ``<metric>_mean`` with ``n_resamples`` replicates, random seed
    ``ci_seed``, coverage ``ci_level``); ``n_resamples=0`` leaves them out. They are not
    in ``out_json``. ``modes`` keeps only those evaluation modes (a study's
    ``studies.<name>.modes``); a row per mode otherwise. A pooled mode's pooled metrics
    are pooled over each seed's images, then averaged over seeds. ``native_metrics``:
    ``evaluate.metrics``, the metrics of our mode in ``out_json``.

    Returns:
        The summary table written to ``out_csv``.
    """
    per_image = select_modes(read_per_image(per_image_csvs), modes)
    summary = add_unscored(summarize_runs(per_image), read_unscored(per_image_csvs))
    summary = add_mode_rows(summary)
    summary = add_selected(summary, read_selected(expand_paths(per_image_csvs)))
    if n_resamples > 0:
        summary = add_cis(summary, per_image, n_resamples, ci_seed, ci_level)
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False)
    write_json(out_json, summary_to_nested(summary, native_metrics))
    log.info("aggregated %d per-image rows into %d summary rows", len(per_image), len(summary))
    return summary
