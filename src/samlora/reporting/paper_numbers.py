"""The papers' reported numbers (``notebooks/paper_numbers.csv``) and a paper-vs-ours table.

The CSV holds one number a row: ``paper`` (TopoLoRA-SAM | SAM2LoRA), ``table`` (where in
the source: "Table 2", "Fig. 3", a notebook cell), ``dataset`` and ``method`` (samlora ids;
a rank variant is ``<method>-r<k>[-alpha<a>]``, a method trained as its paper's code does
``<method>-ref``), ``paper_label`` (the source's own name for the method), ``metric``
(samlora id), ``value`` (a fraction in [0, 1] for ratios, px for ``hd95``), ``source`` (a URL
or ``github:owner/repo@commit:path``), ``source_kind`` (``paper``: the paper's own text or
tables; ``code``: a results file of the reference repository; ``secondary``: a summary
elsewhere) and ``note``. An optional ``prompt`` column names the prompt mode of the number
(:data:`PROMPT_MODES`; empty or absent: ``none``, prompt-free decoding).

:func:`load_paper_numbers` validates the file and raises a one-line ``ValueError`` naming
the file, the row and the column of the first problem; :func:`paper_vs_ours` lines our
mean ± std up against the paper's value.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from samlora.config import REPO_ROOT

#: Default location of the papers' numbers.
DEFAULT_PATH = REPO_ROOT / "notebooks" / "paper_numbers.csv"

#: Columns every file must have, in their usual order.
REQUIRED_COLUMNS = ("paper", "table", "dataset", "method", "paper_label", "metric", "value",
                    "source", "source_kind", "note")
#: Optional column: the prompt mode of the number (empty or absent: ``none``).
PROMPT_COLUMN = "prompt"
PAPERS = ("TopoLoRA-SAM", "SAM2LoRA")
SOURCE_KINDS = ("paper", "code", "secondary")
#: Metric ids (as ``samlora.reporting.tables.METRIC_LABELS``) a paper number may carry.
METRICS = ("dice", "iou", "auc", "cldice", "precision", "sensitivity", "specificity",
           "accuracy", "mcc", "hd95", "bfscore", "ece")
#: Metrics in px, not ratios: any non-negative value is allowed.
PIXEL_METRICS = ("hd95",)
DATASETS = ("drive", "stare", "chase_db1", "kvasir_seg", "sl_ssdd", "hrf", "fives",
            "drishti_gs1", "refuge2", "origa", "g1020", "grape", "papila", "idrid")
#: Method ids of params.yaml (``methods``) a number may be given for.
METHODS = ("topolora_sam", "topolora_sam_no_cldice", "topolora_sam_r16", "decoder_only",
           "lora_only", "adapter_only", "cldice_only", "full_ft", "zero_shot", "zero_shot_box",
           "sam2lora", "sam2lora_zero_shot", "unet_r34", "deeplabv3p_r50", "segformer_b0",
           "mask2former_swin_t")
#: Prompt modes (``samlora.models.prompts.EVAL_MODES``).
PROMPT_MODES = ("none", "1pt", "2pt", "5pt", "5pt1neg", "box", "pts_box")
#: A method id: a known base, optionally a rank variant and/or the reference-code fidelity.
_METHOD_RE = re.compile(r"^(?P<base>[a-z0-9_]+)(?:-r\d+(?:-alpha\d+)?)?(?:-ref)?$")
#: Preference among several numbers for one method and dataset.
_KIND_RANK = {kind: i for i, kind in enumerate(SOURCE_KINDS)}
#: How :func:`paper_vs_ours` names each kind of source.
SOURCE_LABELS = {"paper": "paper", "code": "authors' code",
                 "secondary": "secondary summary (unconfirmed)"}
#: Columns of :func:`paper_vs_ours`.
VS_COLUMNS = ("method", "dataset", "paper", "source", "ours", "difference")
#: Cell of a missing side in :func:`paper_vs_ours`.
MISSING = "–"


def _fail(path: Path, row: int | None, column: str, problem: str) -> ValueError:
    """One-line error; ``row`` is the 1-based data row (file line ``row + 1``)."""
    where = "header" if row is None else f"row {row} (line {row + 1})"
    text = f"{path}: {where}, column '{column}': {problem}"
    return ValueError(" ".join(text.split()))


def _check_row(path: Path, i: int, rec: dict[str, str]) -> float:
    """Validate one record; returns its numeric value."""
    for col in ("paper", "table", "dataset", "method", "paper_label", "metric", "value",
                "source", "source_kind"):
        if not rec[col].strip():
            raise _fail(path, i, col, "empty")
    checks = (("paper", PAPERS), ("dataset", DATASETS), ("metric", METRICS),
              ("source_kind", SOURCE_KINDS))
    for col, allowed in checks:
        if rec[col] not in allowed:
            raise _fail(path, i, col, f"unknown value {rec[col]!r} (known: {', '.join(allowed)})")
    match = _METHOD_RE.match(rec["method"])
    if not match or match["base"] not in METHODS:
        raise _fail(path, i, "method", f"unknown method {rec['method']!r} (a params.yaml "
                    "method, optionally -r<k>[-alpha<a>] and/or -ref)")
    prompt = rec.get(PROMPT_COLUMN, "") or "none"
    if prompt not in PROMPT_MODES:
        raise _fail(path, i, PROMPT_COLUMN,
                    f"unknown prompt mode {prompt!r} (known: {', '.join(PROMPT_MODES)})")
    try:
        value = float(rec["value"])
    except ValueError:
        raise _fail(path, i, "value", f"not a number: {rec['value']!r}") from None
    if not math.isfinite(value):
        raise _fail(path, i, "value", f"not finite: {rec['value']!r}")
    if rec["metric"] in PIXEL_METRICS:
        if value < 0:
            raise _fail(path, i, "value", f"{rec['metric']} (px) is negative: {value}")
    elif not 0.0 <= value <= 1.0:
        raise _fail(path, i, "value", f"{rec['metric']} must be a fraction in [0, 1] "
                    f"(81.2 % is 0.812), got {value}")
    return value


def load_paper_numbers(path: str | Path | None = None) -> pd.DataFrame:
    """The papers' reported numbers, validated.

    Args:
        path: the CSV (default :data:`DEFAULT_PATH`).

    Returns:
        One row per number with the columns of :data:`REQUIRED_COLUMNS` (``value`` a
        float) plus ``prompt`` (``none`` where the file leaves it empty or lacks it), in
        file order.

    Raises:
        ValueError: one line naming the file, the row (and line) and the column of the
            first problem: a missing column, an empty field, an unknown paper, dataset,
            method, metric, prompt mode or source kind, a value that is not a finite
            number or lies outside [0, 1] for a ratio, a row with too many or too few
            fields, or the same number twice.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise _fail(path, None, "paper", "empty file (no header)")
            header = [h.strip() for h in header]
            for col in REQUIRED_COLUMNS:
                if col not in header:
                    raise _fail(path, None, col, f"missing (header: {', '.join(header)})")
            records: list[tuple[int, dict[str, str]]] = []
            for i, fields in enumerate(reader, start=1):
                if not fields:  # blank line
                    continue
                if len(fields) != len(header):
                    col = header[-1] if len(fields) > len(header) else header[len(fields)]
                    raise _fail(path, i, col, f"{len(fields)} fields, the header has "
                                f"{len(header)} (an unquoted comma?)")
                records.append((i, dict(zip(header, fields))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(" ".join(f"{path}: cannot read: {exc}".split())) from exc

    rows, seen = [], {}
    for i, rec in records:
        value = _check_row(path, i, rec)
        prompt = rec.get(PROMPT_COLUMN, "") or "none"
        key = (rec["paper"], rec["table"], rec["dataset"], rec["method"], rec["paper_label"],
               prompt, rec["metric"], rec["source"])
        if key in seen:
            raise _fail(path, i, "value", f"same number as row {seen[key]} (paper, table, "
                        "dataset, method, paper_label, prompt, metric, source)")
        seen[key] = i
        rows.append({**{c: rec[c] for c in REQUIRED_COLUMNS}, "value": value,
                     PROMPT_COLUMN: prompt})
    columns = [*REQUIRED_COLUMNS, PROMPT_COLUMN]
    return pd.DataFrame(rows, columns=columns)


def _fmt(value: float, decimals: int) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def _fmt_diff(diff: float, decimals: int) -> str:
    if diff is None or not math.isfinite(diff):
        return MISSING
    rounded = round(diff, decimals)
    return f"{0.0:.{decimals}f}" if rounded == 0 else f"{rounded:+.{decimals}f}"


def _fmt_ours(mean: float, std: float, decimals: int) -> str:
    if mean is None or not math.isfinite(mean):
        return MISSING
    if std is None or not math.isfinite(std):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def paper_vs_ours(ours: pd.DataFrame, paper_numbers: pd.DataFrame | str | Path | None,
                  paper: str, metric: str, prompt: str = "none",
                  source_kinds: Iterable[str] = SOURCE_KINDS,
                  decimals: int = 3) -> pd.DataFrame:
    """Our numbers beside one paper's, for one metric.

    Args:
        ours: rows ``method, dataset, mean, std`` (std may be nan: one seed), and
            optionally ``prompt`` (then only rows of ``prompt`` are used).
        paper_numbers: a frame from :func:`load_paper_numbers`, or a path to load (None:
            the default file).
        paper: ``TopoLoRA-SAM`` or ``SAM2LoRA``.
        metric: metric id (:data:`METRICS`).
        prompt: prompt mode of the paper's numbers (and of ours, where ``ours`` has one).
        source_kinds: which kinds of source to use; where several numbers remain for one
            method and dataset, a ``paper`` number beats a ``code`` one, which beats a
            ``secondary`` one, then the first in the file.
        decimals: digits after the decimal point.

    Returns:
        String columns :data:`VS_COLUMNS`: the paper's value, the kind of its source
        (:data:`SOURCE_LABELS`: a secondary summary's number is marked unconfirmed), our
        "mean ± std", and ours' mean minus the paper's (signed); "–" where either side is
        missing. Rows: ours in their order, then the paper's methods and datasets we
        lack, in file order.
    """
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r} (known: {', '.join(PAPERS)})")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    missing = {"method", "dataset", "mean", "std"} - set(ours.columns)
    if missing:
        raise ValueError(f"ours lacks column(s) {', '.join(sorted(missing))} "
                         "(needs method, dataset, mean, std)")
    if not isinstance(paper_numbers, pd.DataFrame):
        paper_numbers = load_paper_numbers(paper_numbers)
    kinds = list(source_kinds)
    prompts = (paper_numbers[PROMPT_COLUMN].fillna("none").replace("", "none")
               if PROMPT_COLUMN in paper_numbers.columns
               else pd.Series("none", index=paper_numbers.index))
    ref = paper_numbers[(paper_numbers["paper"] == paper) & (paper_numbers["metric"] == metric)
                        & (prompts == prompt) & paper_numbers["source_kind"].isin(kinds)]
    ref = ref.assign(_rank=ref["source_kind"].map(_KIND_RANK), _order=range(len(ref)))
    ref = ref.sort_values(["_rank", "_order"]).drop_duplicates(["method", "dataset"])
    ref = ref.sort_values("_order")
    paper_value = {(r.method, r.dataset): float(r.value) for r in ref.itertuples()}
    paper_kind = {(r.method, r.dataset): SOURCE_LABELS[r.source_kind] for r in ref.itertuples()}

    if "prompt" in ours.columns:
        ours = ours[ours["prompt"].fillna("none") == prompt]
    ours_value: dict[tuple[str, str], tuple[float, float]] = {}
    for r in ours.itertuples():
        key = (r.method, r.dataset)
        if key in ours_value:
            raise ValueError(f"ours has two rows for method {r.method!r}, dataset {r.dataset!r}")
        ours_value[key] = (float(r.mean), float(r.std))

    keys = list(ours_value) + [k for k in paper_value if k not in ours_value]
    rows = []
    for key in keys:
        p = paper_value.get(key, math.nan)
        mean, std = ours_value.get(key, (math.nan, math.nan))
        rows.append({"method": key[0], "dataset": key[1], "paper": _fmt(p, decimals),
                     "source": paper_kind.get(key, MISSING),
                     "ours": _fmt_ours(mean, std, decimals),
                     "difference": _fmt_diff(mean - p, decimals)})
    return pd.DataFrame(rows, columns=list(VS_COLUMNS))


def ours_by_dataset(summary: pd.DataFrame, metric: str, mode: str = "native_fov",
                    prompt: str = "none") -> pd.DataFrame:
    """Our rows as :func:`paper_vs_ours` takes them: ``method, dataset, mean, std`` of
    ``metric`` in ``mode`` and ``prompt``, from each method's in-domain or union runs (a
    transfer row, trained on one dataset and tested on another, is left out)."""
    rows = summary
    if "mode" in rows:
        rows = rows[rows["mode"] == mode]
    if "prompt" in rows:
        rows = rows[rows["prompt"].fillna("none") == prompt]
    known = set(DATASETS)
    keep = (rows["train_set"] == rows["test_set"]) | ~rows["train_set"].isin(known)
    rows = rows[keep & (rows["method"] != "human")]
    out = rows[["method", "test_set"]].rename(columns={"test_set": "dataset"}).copy()
    out["mean"] = rows.get(f"{metric}_mean")
    out["std"] = rows.get(f"{metric}_std")
    return out.drop_duplicates(["method", "dataset"]).reset_index(drop=True)


#: Headline claims a paper states as a maximum over datasets ("Dice up to 0.86"): paper,
#: target, metric, value, and the datasets the maximum runs over.
VESSEL_SETS = ("drive", "stare", "chase_db1", "hrf", "fives")
DISC_SETS = ("drishti_gs1", "refuge2", "origa", "g1020", "grape", "papila")
HEADLINES = (
    ("SAM2LoRA", "vessel", "dice", 0.86, VESSEL_SETS),
    ("SAM2LoRA", "vessel", "auc", 0.98, VESSEL_SETS),
    ("SAM2LoRA", "disc", "dice", 0.93, DISC_SETS),
    ("SAM2LoRA", "disc", "auc", 0.99, DISC_SETS),
)
#: Where :data:`HEADLINES` are stated.
HEADLINE_SOURCE = {"SAM2LoRA": "https://arxiv.org/abs/2510.10288 (abstract)"}


def headline_table(summary: pd.DataFrame, paper: str, method: str, mode: str = "native_fov",
                   decimals: int = 3) -> pd.DataFrame:
    """A paper's "up to" claims beside our maximum over the same datasets.

    Args:
        summary: a study's summary (in-domain and union rows are used, as
            :func:`ours_by_dataset`).
        paper: the paper whose :data:`HEADLINES` to show.
        method: our method the claim is about (e.g. ``sam2lora``).
        mode: evaluation mode of ours.

    Returns:
        Columns ``target, metric, paper (up to), ours (max), dataset, datasets with runs``;
        "–" where no dataset of the target has a row. ``attrs["source"]`` names the source.
    """
    rows = []
    for name, target, metric, value, sets in HEADLINES:
        if name != paper:
            continue
        ours = ours_by_dataset(summary, metric, mode) if f"{metric}_mean" in summary else \
            pd.DataFrame(columns=["method", "dataset", "mean", "std"])
        ours = ours[(ours["method"] == method) & ours["dataset"].isin(sets)
                    & ours["mean"].notna()]
        best = ours.loc[ours["mean"].idxmax()] if not ours.empty else None
        rows.append({"target": target, "metric": metric, "paper (up to)": _fmt(value, 2),
                     "ours (max)": MISSING if best is None else _fmt(float(best["mean"]),
                                                                     decimals),
                     "dataset": MISSING if best is None else best["dataset"],
                     "datasets with runs": f"{len(ours)} of {len(sets)}"})
    table = pd.DataFrame(rows, columns=["target", "metric", "paper (up to)", "ours (max)",
                                        "dataset", "datasets with runs"])
    table.attrs["source"] = HEADLINE_SOURCE.get(paper, "")
    return table
