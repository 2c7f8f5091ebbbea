"""The whole chain through `dvc repro` (which calls the Snakemake targets) on real data.

One run of the smoke preset (under umask 022), whose outputs are checked against each other:
per-image tables against the prepared test splits, the summary against the per-image means,
``results/metrics.json``, the report's table CSV and the table shown in the executed notebook
(and its HTML export) against the summary, and every file's mode against the umask. Then the
change-detection contract: after an edit of ``train.lr`` both DVC and Snakemake see the
training stage and everything after it as out of date, and data preparation as up to date.
"""

from __future__ import annotations

import json
import math
import re
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import job_counts, snakemake, venv_env

pytestmark = pytest.mark.slow  # one real `dvc repro` and a rerun: ~140 s here


#: The smoke run's grid: params.yaml's protocols (train on DRIVE; test on DRIVE and
#: CHASE_DB1, with their test-split sizes) × tests/fixtures/smoke.yaml's methods and seed.
METHODS = ("topolora_sam", "decoder_only")
TRAIN_SET = "drive"
TEST_SETS = {"drive": 20, "chase_db1": 8}
SEED = 0
STUDY = "smoke"
#: Column label of the report's table -> metric id of summary.csv and metrics_per_image.csv.
TABLE_METRICS = {"Dice": "dice", "IoU": "iou", "AUC": "auc", "clDice": "cldice"}
TABLE_INDEX = ("Method", "Train set", "Test set")
#: Every template the smoke study renders (tests/fixtures/smoke.yaml).
REPORTS = ("main_results", "topolora_results", "sam2lora_results", "samlora_results")
#: Umask the pipeline runs under, and the modes it should give new files and folders.
UMASK = 0o022
FILE_MODE, DIR_MODE = 0o666 & ~UMASK, 0o777 & ~UMASK


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                         umask=UMASK)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def reproduced(repo_root: Path, mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch repository after one `dvc repro` with the smoke preset."""
    import shutil

    work = tmp_path_factory.mktemp("repo")
    for name in ["Snakefile", "environment.yml", "params.yaml", "presets", "workflow", "notebooks", "dvc.yaml",
                 "src", ".dvc", ".dvcignore", ".gitignore"]:
        src = repo_root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    shutil.rmtree(work / ".dvc" / "tmp", ignore_errors=True)
    preset = yaml.safe_load((repo_root / "tests/fixtures/smoke.yaml").read_text())
    preset.setdefault("data", {})["mirror"] = str(mirror)
    (work / "presets" / "smoke.yaml").write_text(yaml.safe_dump(preset))
    params = work / "params.yaml"  # the preset as DVC records it: params.yaml's own key
    params.write_text(params.read_text().replace("\npreset: []\n",
                                                 "\npreset: presets/smoke.yaml\n", 1))
    assert "preset: presets/smoke.yaml" in params.read_text()
    env = venv_env()
    _run(["git", "init", "-q"], work, env)
    _run(["git", "add", "-A"], work, env)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], work, env)
    _run(["dvc", "repro"], work, env, timeout=900)
    return work


class _TableRows(HTMLParser):
    """Cells of the first ``<table class="dataframe">`` of an HTML text, row by row, split
    into header (thead) and body (tbody) rows; a cell spanning rows (pandas writes each
    MultiIndex label once, with ``rowspan``) is repeated in every row it spans."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[list[str]] = []
        self.body: list[list[str]] = []
        self._state = "before"  # before, in, after the table
        self._section: list[list[str]] = self.head
        self._raw: list[tuple[str, int]] = []  # (text, rowspan) of the current row
        self._cell: list[str] | None = None
        self._span = 1
        self._carry: dict[int, tuple[str, int]] = {}  # column -> (text, rows still spanned)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and self._state == "before" and "dataframe" in (a.get("class") or ""):
            self._state = "in"
        elif self._state != "in":
            return
        elif tag in ("thead", "tbody"):
            self._section = self.head if tag == "thead" else self.body
            self._carry = {}
        elif tag == "tr":
            self._raw = []
        elif tag in ("th", "td"):
            self._cell, self._span = [], int(a.get("rowspan") or 1)

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._state != "in":
            return
        if tag in ("th", "td") and self._cell is not None:
            self._raw.append(("".join(self._cell).strip(), self._span))
            self._cell = None
        elif tag == "tr":
            self._section.append(self._expand(self._raw))
        elif tag == "table":
            self._state = "after"

    def _expand(self, raw: list[tuple[str, int]]) -> list[str]:
        row, cells, col = [], iter(raw), 0
        while True:
            if col in self._carry:
                text, left = self._carry.pop(col)
                if left > 1:
                    self._carry[col] = (text, left - 1)
            else:
                try:
                    text, span = next(cells)
                except StopIteration:
                    return row
                if span > 1:
                    self._carry[col] = (text, span - 1)
            row.append(text)
            col += 1


def _html_table(html: str) -> list[dict[str, str]]:
    """The first pandas table of ``html`` as one {column label: cell text} per body row; the
    index levels' names (second header row) label the index columns."""
    parser = _TableRows()
    parser.feed(html)
    assert parser.head and parser.body, "no pandas table (<table class='dataframe'>) found"
    names = [" ".join(filter(None, col)) for col in zip(*parser.head)]
    assert all(len(r) == len(names) for r in parser.body), (names, parser.body)
    return [dict(zip(names, r)) for r in parser.body]


def _notebook_table_html(nb_path: Path) -> str:
    """The HTML output of the executed notebook's main-table cell."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"
             and "table = main_table(" in "".join(c["source"])]
    assert len(cells) == 1, "expected one code cell building the main table"
    outs = [o for o in cells[0]["outputs"] if "text/html" in o.get("data", {})]
    assert len(outs) == 1, cells[0]["outputs"]
    return "".join(outs[0]["data"]["text/html"])


_CELL = re.compile(r"(-?\d+\.(\d+))(?: ± (\d+\.\d+))?")


def _check_cell(cell: str, mean: float, std: float, where: str) -> int | None:
    """``cell`` shows ``mean`` (and `` ± std`` when std is a number) rounded to the digits it
    shows, "–" for a nan mean; returns those digits (None for "–")."""
    if not math.isfinite(mean):
        assert cell == "–", f"{where}: {cell!r} for a nan mean"
        return None
    m = _CELL.fullmatch(cell)
    assert m, f"{where}: {cell!r} is not 'mean' or 'mean ± std'"
    digits = len(m.group(2))
    assert m.group(1) == f"{mean:.{digits}f}", f"{where}: {cell!r}, summary mean {mean!r}"
    if math.isfinite(std):
        assert m.group(3) == f"{std:.{digits}f}", f"{where}: {cell!r}, summary std {std!r}"
    else:
        assert m.group(3) is None, f"{where}: {cell!r} shows a std, the summary has none"
    return digits


def _check_table(rows: list[dict[str, str]], summary: pd.DataFrame, what: str) -> None:
    """Every row of a results table is the summary row of its method × train × test set, in
    the summary's order, and every cell its mean (± std) at one precision of >= 3 digits."""
    from samlora.reporting.tables import METRIC_LABELS

    labels = {label: metric for metric, label in METRIC_LABELS.items()}
    shown = {label: labels[label] for label in rows[0] if label not in TABLE_INDEX} if rows else {}
    # every metric of our mode is a column (the study evaluates all of them)
    assert rows and set(TABLE_METRICS) <= set(shown) and all(
        set(r) == {*TABLE_INDEX, *shown} for r in rows), (
        f"{what}: columns {[list(r) for r in rows[:1]]}")
    assert "Betti-0 error" in shown and "ECE" in shown and "F1" not in shown, what
    keys = [tuple(r[k] for k in TABLE_INDEX) for r in rows]
    assert keys == list(summary[["method", "train_set", "test_set"]].itertuples(
        index=False, name=None)), f"{what}: rows {keys}"
    digits = set()
    for row, (_, srow) in zip(rows, summary.iterrows()):
        for label, metric in shown.items():
            digits.add(_check_cell(row[label], float(srow[f"{metric}_mean"]),
                                   float(srow[f"{metric}_std"]),
                                   f"{what} {'/'.join(row[k] for k in TABLE_INDEX)} {label}"))
    digits.discard(None)
    assert len(digits) == 1 and min(digits) >= 3, f"{what}: cells shown with {digits} digits"


def test_repro_leaves_every_artifact(reproduced: Path) -> None:
    w = reproduced
    preset = yaml.safe_load((w / "presets/smoke.yaml").read_text())
    assert preset["studies"]["enabled"] == [STUDY]
    protocols = preset["studies"][STUDY]["protocols"]
    assert {(p["train"], t) for p in protocols for t in p["test"]} == {
        (TRAIN_SET, t) for t in TEST_SETS}
    drive = pd.read_csv(w / "data/processed/drive/index.csv")
    assert drive["split"].value_counts().to_dict() == {"train": 20, "test": 20}
    chase = pd.read_csv(w / "data/processed/chase_db1/index.csv")
    assert chase["split"].value_counts().to_dict() == {"train": 20, "test": 8}
    test_cases = {t: pd.read_csv(w / f"data/processed/{t}/index.csv", dtype={"case": str})
                  .query("split == 'test'")["case"].tolist() for t in TEST_SETS}
    assert {t: len(c) for t, c in test_cases.items()} == TEST_SETS

    summary = pd.read_csv(w / f"results/{STUDY}/summary.csv",
                          dtype={"method": str, "train_set": str, "test_set": str})
    # one row per method, test set and evaluation mode (the smoke study is samlora's own:
    # ours and both papers'), and the human row (the second annotator) per test set in
    # each mode but SAM2LoRA's, whose reference is the union of both annotators
    modes = ["native_fov", "topolora_ref", "sam2lora_ref"]
    assert summary.groupby("method")["mode"].apply(sorted).to_dict() == {
        **{m: sorted(modes * len(TEST_SETS)) for m in METHODS},
        "human": sorted(["native_fov", "topolora_ref"] * len(TEST_SETS))}
    for mode in modes[1:]:  # each paper's mode has its own numbers, not a copy of ours
        theirs = summary[(summary["mode"] == mode) & (summary["method"] == METHODS[0])]
        ours = summary[(summary["mode"] == "native_fov") & (summary["method"] == METHODS[0])]
        assert not np.allclose(theirs["dice_mean"], ours["dice_mean"]), mode
    all_modes = summary
    summary = summary[summary["mode"] == "native_fov"]
    assert len(summary) == (len(METHODS) + 1) * len(TEST_SETS)
    human = summary[summary["method"] == "human"].set_index("test_set")
    assert sorted(human.index) == sorted(TEST_SETS) and set(human["train_set"]) == {"-"}
    for test_set in TEST_SETS:
        rows = pd.read_csv(w / f"results/human/{test_set}/metrics_per_image.csv")
        rows = rows[rows["mode"] == "native_fov"]
        assert human.loc[test_set, "dice_mean"] == pytest.approx(rows["dice"].mean())
        assert 0.7 < rows["dice"].mean() < 0.85, test_set  # inter-observer agreement
    comparisons = pd.read_csv(w / f"results/{STUDY}/comparisons.csv")
    assert set(comparisons["reference"]) == {METHODS[0]}
    assert set(comparisons["method"]) == set(METHODS[1:]) | {"human"}
    assert comparisons["p_holm"].dropna().between(0, 1).all()
    summary_all = summary
    summary = summary[summary["method"] != "human"]
    for method in METHODS:
        run = w / f"runs/{method}__{TRAIN_SET}__seed{SEED}"
        assert (run / "adapter.safetensors").stat().st_size > 0
        assert yaml.safe_load((run / "config.yaml").read_text())["method"] == method
        for test_set, n in TEST_SETS.items():
            res = w / f"results/runs/{method}__{TRAIN_SET}__seed{SEED}/{test_set}"
            where = f"{method}/{TRAIN_SET}/seed{SEED}/{test_set}"
            per_image = pd.read_csv(res / "metrics_per_image.csv", dtype=str)
            assert sorted(set(per_image["mode"])) == sorted(modes), where
            per_image = per_image[per_image["mode"] == "native_fov"]
            metrics = per_image[list(TABLE_METRICS.values())].astype(float)
            assert len(per_image) == n
            assert metrics["dice"].between(0, 1).all()
            assert len(list((res / "probs").glob("*.png"))) == n
            # the run identity of every row, and one row per test case of the test set
            for column, value in (("method", method), ("train_set", TRAIN_SET),
                                  ("test_set", test_set), ("seed", str(SEED))):
                assert set(per_image[column]) == {value}, (
                    f"{where}: {column} {sorted(set(per_image[column]))}, expected {value!r}")
            assert sorted(per_image["case"]) == sorted(test_cases[test_set]), where
            # the summary row: the mean over the images of the one seed, no std over seeds
            row = summary[(summary["method"] == method) & (summary["train_set"] == TRAIN_SET)
                          & (summary["test_set"] == test_set)]
            assert len(row) == 1, where
            row = row.iloc[0]
            assert (row["n_seeds"], row["n_images"]) == (1, n), where
            # the weights it was computed from: the epoch train.select kept, from the manifest
            from safetensors import safe_open

            with safe_open(str(run / "adapter.safetensors"), framework="pt") as f:
                kept = f.metadata()
            assert (row["selected_by"], str(int(row["selected_epochs"]))) == (
                kept["selected_by"], kept["selected_epoch"]), where
            for metric in TABLE_METRICS.values():
                assert row[f"{metric}_mean"] == pytest.approx(metrics[metric].mean(),
                                                              rel=1e-9), (where, metric)
                assert math.isnan(row[f"{metric}_std"]), (where, metric)

    # results/<study>/metrics.json: method -> train set -> test set -> the summary's values;
    # results/metrics.json (the DVC metric) holds it under the study's name
    nested = json.loads((w / f"results/{STUDY}/metrics.json").read_text())
    assert json.loads((w / "results/metrics.json").read_text()) == {STUDY: nested}
    assert set(nested) == {*METHODS, "human"}
    nested = {m: v for m, v in nested.items() if m != "human"}
    for method, by_train in nested.items():
        assert set(by_train) == {TRAIN_SET}, (method, set(by_train))
        assert set(by_train[TRAIN_SET]) == set(TEST_SETS), (method, set(by_train[TRAIN_SET]))
    for _, row in summary.iterrows():
        leaf = nested[row["method"]][row["train_set"]][row["test_set"]]
        where = f"metrics.json {row['method']}.{row['train_set']}.{row['test_set']}"
        evaluated = yaml.safe_load((w / "params.yaml").read_text())["evaluate"]["metrics"]
        assert set(leaf) == {*evaluated, *(f"{m}_std" for m in evaluated),
                             "n_seeds", "n_images", *(f"mode_{m}" for m in modes[1:]
                                                      if row["method"] != "human"
                                                      or m == "topolora_ref")}, (where,
                                                                                 sorted(leaf))
        theirs = all_modes[(all_modes["mode"] == "topolora_ref")
                           & (all_modes["method"] == row["method"])
                           & (all_modes["test_set"] == row["test_set"])].iloc[0]
        assert leaf["mode_topolora_ref"]["dice"] == pytest.approx(theirs["dice_mean"])
        for metric in TABLE_METRICS.values():
            assert leaf[metric] == pytest.approx(row[f"{metric}_mean"], rel=1e-12), (
                where, metric)
            std = row[f"{metric}_std"]
            assert (leaf[f"{metric}_std"] is None if math.isnan(std)
                    else leaf[f"{metric}_std"] == pytest.approx(std, rel=1e-12)), (where, metric)
        assert (leaf["n_seeds"], leaf["n_images"]) == (row["n_seeds"], row["n_images"]), where

    # the report: the table CSV it saves, the table the executed notebook shows, its HTML
    reports = w / "reports" / STUDY
    saved = pd.read_csv(reports / "tables/main_results.csv", dtype=str, keep_default_na=False)
    _check_table(saved.to_dict("records"), summary_all, "tables/main_results.csv")
    shown = _html_table(_notebook_table_html(reports / "main_results.ipynb"))
    _check_table(shown, summary_all, "table of main_results.ipynb")
    html = (reports / "main_results.html").read_text()
    assert _html_table(html.split("Table 1.", 1)[1]) == shown  # the backbones table is first
    assert "<img" in html
    # each paper's mode as its own table, and what the mode alone changes for one run
    for mode in modes[1:]:
        theirs = pd.read_csv(reports / f"tables/main_results_{mode}.csv", dtype=str)
        assert len(theirs) == len(all_modes[all_modes["mode"] == mode]), mode
    vs = pd.read_csv(reports / "tables/mode_vs_mode.csv").set_index("Metric")
    assert list(vs.columns) == [*modes, *(f"Δ {m}" for m in modes[1:])]
    first = all_modes[(all_modes["method"] != "human")].iloc[0]
    mine = all_modes[(all_modes["method"] == first["method"])
                     & (all_modes["test_set"] == first["test_set"])].set_index("mode")
    assert vs.loc["Dice", "topolora_ref"] == pytest.approx(mine.loc["topolora_ref", "dice_mean"],
                                                           abs=1e-3)
    assert vs.loc["Dice", "Δ sam2lora_ref"] == pytest.approx(
        mine.loc["sam2lora_ref", "dice_mean"] - mine.loc["native_fov", "dice_mean"], abs=2e-3)
    assert "Δ topolora_ref" in html
    index = (w / "reports/index.html").read_text()
    assert f'href="{STUDY}/main_results.html"' in index


def test_every_report_renders_from_the_study_results(reproduced: Path) -> None:
    """Each template, rendered by the workflow from the smoke study's real results: its
    notebook has no error output, its HTML embeds its figures, every table it saved is
    non-empty in all three formats and every figure in both, and the tables' numbers are the
    summary's and comparisons.csv's."""
    reports = reproduced / "reports" / STUDY
    for name in REPORTS:
        nb = json.loads((reports / f"{name}.ipynb").read_text())
        errors = [o for c in nb["cells"] if c["cell_type"] == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, (name, errors[:1])
        html = (reports / f"{name}.html").read_text()
        assert "Traceback" not in html and "data:image/png;base64," in html, name
        # self-contained: nothing is fetched from elsewhere (no CDN script, no remote image)
        assert not re.search(r'<(?:script|img|link)[^>]+(?:src|href)="https?:', html), name
    tables = sorted((reports / "tables").glob("*.csv"))
    for csv in tables:
        for ext in (".csv", ".tex", ".md"):
            assert csv.with_suffix(ext).stat().st_size > 0, csv.with_suffix(ext)
    names = {p.stem for p in tables}
    assert {"benchmark_dice", "metrics", "per_dataset_topolora_sam", "comparisons", "topology",
            "head_to_head_dice", "backbones"} <= names, sorted(names)
    figures = sorted((reports / "figures").glob("*.png"))
    # the qualitative panel: no baseline in the smoke study, so ours against decoder_only
    assert {"heatmap_dice", "head_to_head_dice", "reliability_drive", "qualitative"} <= {
        p.stem for p in figures}
    for png in figures:
        assert png.read_bytes()[:4] == b"\x89PNG" and png.with_suffix(".pdf").stat().st_size > 0

    summary = pd.read_csv(reproduced / f"results/{STUDY}/summary.csv")
    ours = summary[summary["mode"] == "native_fov"].set_index(["method", "train_set",
                                                               "test_set"])
    topo = pd.read_csv(reports / "tables/topology.csv", dtype=str, keep_default_na=False)
    topo = topo.set_index(["Method", "Train set", "Test set"])
    assert sorted(topo.index) == sorted(ours.index)
    for key, row in topo.iterrows():
        for label, metric in (("Dice", "dice"), ("clDice", "cldice"),
                              ("Betti-0 error", "betti0_error"),
                              ("Betti-1 error", "betti1_error")):
            _check_cell(row[label], float(ours.loc[key, f"{metric}_mean"]),
                        float(ours.loc[key, f"{metric}_std"]), f"topology {key} {label}")
    bench = pd.read_csv(reports / "tables/benchmark_dice.csv", dtype=str, keep_default_na=False)
    bench = bench.set_index("Method")
    label = {"topolora_sam": "TopoLoRA-SAM", "decoder_only": "Decoder only"}
    for method in METHODS:
        src = ours.loc[(method, TRAIN_SET, TRAIN_SET)]
        _check_cell(bench.loc[label[method], "DRIVE"], float(src["dice_mean"]),
                    float(src["dice_std"]), f"benchmark_dice {method}")
    comparisons = pd.read_csv(reproduced / f"results/{STUDY}/comparisons.csv")
    comparisons = comparisons[comparisons["mode"] == "native_fov"]
    shown = pd.read_csv(reports / "tables/comparisons.csv", dtype=str, keep_default_na=False)
    assert len(shown) == len(comparisons[comparisons["metric"].isin(
        ["dice", "iou", "auc", "cldice", "precision", "sensitivity", "specificity",
         "accuracy", "mcc", "f1", "pr_auc", "hd95", "assd", "hd95_mm", "assd_mm",
         "boundary_iou", "bfscore", "betti0_error", "betti1_error", "ece"])])
    dice = comparisons[(comparisons["metric"] == "dice")].iloc[0]
    row = shown[(shown["Method"] == dice["method"]) & (shown["Test set"] == dice["test_set"])
                & (shown["Metric"] == "Dice")].iloc[0]
    assert row["Δ mean [95 % CI]"].startswith(f"{dice['mean_diff']:+.3f} [")
    assert row["n"] == str(int(dice["n"]))

    # `snakemake --report`: the rendered reports and the index are its items
    res = snakemake(reproduced, "report_all", "--report", "report.zip", "--configfile",
                    "params.yaml", "presets/smoke.yaml", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    import zipfile

    names = "\n".join(zipfile.ZipFile(reproduced / "report.zip").namelist())
    assert all(f"{name}.html" in names for name in REPORTS) and "index.html" in names
    (reproduced / "report.zip").unlink()


@pytest.mark.browser
def test_the_rendered_site_opens_in_a_browser(reproduced: Path, tmp_path: Path) -> None:
    """reports/index.html of the real run, opened in headless Chromium: every link resolves,
    every report loads without an error cell or a failed request, every image decodes, and
    the index shows a thumbnail of each figure; a screenshot of the index is kept."""
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location(
        "_samlora_browser", Path(__file__).resolve().parents[1] / "browser.py")
    browser = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(browser)
    if not browser.chromium_available():
        pytest.fail(browser.INSTALL_HINT, pytrace=False)
    artifacts = Path(os.environ.get("SAMLORA_TEST_ARTIFACTS") or tmp_path)
    shot = artifacts / "index_smoke.png"
    result = browser.check_site(reproduced / "reports/index.html", shot)
    assert result["problems"] == [], result["problems"]
    assert result.get("external", []) == []  # the reports fetch nothing from the network
    assert result["pages"] == 1 + len(REPORTS)  # the index and every report
    figures = list((reproduced / "reports" / STUDY / "figures").glob("*.png"))
    index = (reproduced / "reports/index.html").read_text()
    for png in figures:
        assert f'src="{STUDY}/figures/{png.name}"' in index, png.name
    assert result["images"] >= len(figures)
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_outputs_carry_the_umask_mode(reproduced: Path) -> None:
    """Under umask 022 every file the pipeline writes is 0644 and every folder 0755 (no
    mkstemp 0600 file nor mkdtemp 0700 folder renamed into place)."""
    wrong = []
    for top in ("runs", "results", "reports", "data/processed"):
        root = reproduced / top
        for path in [root, *sorted(root.rglob("*"))]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode != (DIR_MODE if path.is_dir() else FILE_MODE):
                wrong.append(f"{mode:04o} {path.relative_to(reproduced)}")
    assert not wrong, f"{len(wrong)} output(s) without the umask's mode:\n" + "\n".join(wrong)


def test_params_edit_invalidates_train_and_after_only(reproduced: Path) -> None:
    w = reproduced
    env = venv_env()
    status = json.loads(_run(["dvc", "status", "--json"], w, env))
    assert status == {}, status
    params = yaml.safe_load((w / "params.yaml").read_text())
    params["train"]["lr"] = 3.0e-4
    (w / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(_run(["dvc", "status", "--json"], w, env))
    assert set(status) == {"train", "evaluate", "report"}
    res = snakemake(w, "-n", "--cores", "1", "--configfile", "params.yaml", "presets/smoke.yaml")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert "prepare_dataset" not in counts and "download_dataset" not in counts
    assert counts["train_model"] == 2 and counts["predict_test_set"] == 4
    assert counts["evaluate_test_set"] == 4 and counts["render_report"] == len(REPORTS)
    # ... and the rerun trains the edited runs afresh: new history, new weights, new config
    import torch
    from safetensors.torch import load_file

    runs = {m: w / "runs" / f"{m}__{TRAIN_SET}__seed{SEED}" for m in METHODS}
    before = {m: load_file(r / "adapter.safetensors") for m, r in runs.items()}
    index_mtime = (w / "data/processed/drive/index.csv").stat().st_mtime_ns
    _run(["dvc", "repro"], w, env, timeout=900)
    for method, run in runs.items():
        state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
        assert [h["epoch"] for h in state["history"]] == [1]
        assert state["history"][0]["lr"] == pytest.approx(3.0e-4), method
        after = load_file(run / "adapter.safetensors")
        assert any(not torch.equal(before[method][k], after[k]) for k in after), method
        assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 3.0e-4
    assert (w / "data/processed/drive/index.csv").stat().st_mtime_ns == index_mtime
    assert json.loads(_run(["dvc", "status", "--json"], w, env)) == {}


def test_editing_one_study_plans_only_its_new_jobs(reproduced: Path) -> None:
    """A second seed in the study's own section: exactly the new runs and what follows."""
    w = reproduced
    preset = yaml.safe_load((w / "presets/smoke.yaml").read_text())
    preset["studies"][STUDY]["seeds"] = [SEED, SEED + 1]
    (w / "presets/smoke.yaml").write_text(yaml.safe_dump(preset, sort_keys=False))
    res = snakemake(w, "-n", "--cores", "1", "--configfile", "params.yaml", "presets/smoke.yaml")
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert "prepare_dataset" not in counts and "download_dataset" not in counts
    assert counts["train_model"] == len(METHODS)  # the seed-1 runs only
    assert counts["predict_test_set"] == counts["evaluate_test_set"] == \
        len(METHODS) * len(TEST_SETS)
    assert counts["aggregate_study"] == 1 and counts["render_report"] == len(REPORTS)
    for method in METHODS:
        assert f"runs/{method}__{TRAIN_SET}__seed{SEED + 1}/adapter.safetensors" in res.stdout


def test_a_partial_study_renders_what_it_has_and_names_the_gaps(reproduced: Path) -> None:
    """Last in the file: it rewrites the index (its timestamp), which DVC would see as a
    changed output. With one evaluation missing, `report-partial` renders every report of the study from
    the rest, into folders the workflow does not own, each naming what it lacks; the index
    links those while the full report is missing. Everything is put back afterwards."""
    import shutil

    w = reproduced
    preset = yaml.safe_load((w / "presets/smoke.yaml").read_text())
    preset["studies"][STUDY]["seeds"] = [SEED]  # the study as run (an earlier test adds one)
    (w / "presets/smoke.yaml").write_text(yaml.safe_dump(preset, sort_keys=False))
    gone = w / f"results/runs/decoder_only__{TRAIN_SET}__seed{SEED}/chase_db1"
    aside = w / "aside_chase_db1"
    reports = w / "reports" / STUDY
    shutil.move(gone, aside)
    moved = [reports / f"{r}.html" for r in REPORTS]
    try:
        for html in moved:
            html.rename(html.with_suffix(".html.bak"))
        env = venv_env()
        args = ["--params", "params.yaml", "--params", "presets/smoke.yaml"]
        _run(["python", "-m", "samlora", "report-partial", *args, "--study", STUDY], w, env)
        summary = pd.read_csv(w / f"results/{STUDY}/partial/summary.csv")
        ours = summary[summary["mode"] == "native_fov"]
        assert not ((ours["method"] == "decoder_only") & (ours["test_set"] == "chase_db1")).any()
        assert len(ours) == (len(METHODS) + 1) * len(TEST_SETS) - 1
        for name in REPORTS:
            html = (reports / "partial" / f"{name}.html").read_text()
            assert f"decoder_only__{TRAIN_SET}__seed{SEED} on chase_db1" in html, name
            assert "This study is incomplete: 1 evaluation(s) missing" in html, name
        _run(["python", "-m", "samlora", "report-index", *args, "--studies", STUDY, "--out",
              "reports/index.html"], w, env)
        index = (w / "reports/index.html").read_text()
        assert f'href="{STUDY}/partial/main_results.html"' in index
        assert f"decoder_only__{TRAIN_SET}__seed{SEED} on chase_db1" in index
    finally:
        shutil.move(aside, gone)
        for html in moved:
            if html.with_suffix(".html.bak").exists():
                html.with_suffix(".html.bak").rename(html)
        shutil.rmtree(reports / "partial", ignore_errors=True)
        shutil.rmtree(w / f"results/{STUDY}/partial", ignore_errors=True)
        _run(["python", "-m", "samlora", "report-index", "--params", "params.yaml", "--params",
              "presets/smoke.yaml", "--studies", STUDY, "--out", "reports/index.html"], w,
             venv_env())
