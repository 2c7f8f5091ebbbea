"""reports/index.html and the reports it links, opened in headless Chromium (tests/browser.py):
a good site passes and is screenshotted; a broken image, an error cell and a dead link are
each reported."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.figure import Figure

from samlora.reporting.index import write_index
from samlora.study.studies import Study

pytestmark = pytest.mark.browser

_spec = importlib.util.spec_from_file_location(
    "_samlora_browser", Path(__file__).resolve().parents[1] / "browser.py")
browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser)

GOOD_CELLS = [
    "import warnings\nwarnings.warn('a warning on stderr is not an error')",
    "import matplotlib.pyplot as plt\nplt.plot([0, 1, 2], [0, 1, 0])\nplt.show()",
]
BAD_CELLS = [
    "import sys\nprint('progress 50%', file=sys.stderr)",
    "1 / 0",
    "print('after the error')",
]


def _check_site():
    """``check_site``, or a failed test (never a skip) where Chromium is not installed."""
    if not browser.chromium_available():
        pytest.fail(browser.INSTALL_HINT, pytrace=False)
    return browser.check_site


def _export(cells: list[str], out: Path) -> Path:
    """Execute ``cells`` in a fresh kernel (errors kept as outputs) and write the notebook's
    nbconvert HTML export to ``out``."""
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    from samlora.reporting.render import KERNEL_NAME, ensure_kernel

    ensure_kernel()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbclient.NotebookClient(nb, kernel_name=KERNEL_NAME, allow_errors=True, timeout=120,
                            resources={"metadata": {"path": str(out.parent)}}).execute()
    body, _ = HTMLExporter().from_notebook_node(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory):
    """``exports(kind)``: the HTML export of the good or the bad notebook, executed on first
    use (after the Chromium check, so that a missing browser fails fast)."""
    folder = tmp_path_factory.mktemp("exports")

    @functools.cache
    def export(kind: str) -> Path:
        return _export(GOOD_CELLS if kind == "good" else BAD_CELLS, folder / f"{kind}.html")

    return export


def _touch(path: Path, text: str = "x\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_good_site_has_no_problem(exports, tmp_path: Path) -> None:
    check_site = _check_site()
    root = tmp_path / "project"
    run = SimpleNamespace(name="topolora_sam__drive__seed0")
    _touch(root / "results/runs" / run.name / "drive/metrics_per_image.csv")
    _touch(root / "results/alpha/summary.csv")
    report = root / "reports/alpha/main_results.html"
    report.parent.mkdir(parents=True)
    report.write_text(exports("good").read_text(encoding="utf-8"), encoding="utf-8")
    assert "data:image/png;base64," in report.read_text(encoding="utf-8")
    for name in ("dice_box", "roc curve"):
        fig = Figure(figsize=(3, 2))
        fig.add_subplot().bar(["a", "b"], [0.8, 0.7])
        (root / "reports/alpha/figures").mkdir(parents=True, exist_ok=True)
        fig.savefig(root / f"reports/alpha/figures/{name}.png")
        fig.savefig(root / f"reports/alpha/figures/{name}.pdf")
    _touch(root / "reports/alpha/tables/main_table.md", "| a |\n|---|\n| 1 |\n")
    _touch(root / "reports/alpha/tables/main_table.csv", "a\n1\n")
    study = Study(name="alpha", paper="topolora", feeds=("Table 2",), runs=(run,),
                  evaluations=((run, "drive"),), reports=("main_results",))
    index = write_index({"alpha": study}, root / "reports/index.html")

    folder = Path(os.environ.get("SAMLORA_TEST_ARTIFACTS") or tmp_path)
    shot = folder / "index-screenshot.png"
    result = check_site(index, shot)

    assert result["problems"] == []
    assert result["pages"] == 2  # the index, then the report
    # two thumbnails on the index and the notebook's matplotlib PNG in the report
    assert result["images"] == 3
    # report, summary.csv, 2 figures and 2 PDFs, 2 tables
    assert result["links"] == 8
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 1000


def test_bad_site_reports_each_problem(exports, tmp_path: Path) -> None:
    check_site = _check_site()
    site = tmp_path / "reports"
    site.mkdir()
    (site / "broken.html").write_text(
        "<!DOCTYPE html><html><body><p>a figure</p><img src='missing.png'></body></html>")
    (site / "failed.html").write_text(exports("bad").read_text(encoding="utf-8"),
                                      encoding="utf-8")
    (site / "index.html").write_text(
        "<!DOCTYPE html><html><body><a href='#top'>top</a>"
        "<a href='broken.html'>broken</a> <a href='failed.html'>failed</a> "
        "<a href='tables/gone.csv'>gone</a></body></html>")

    result = check_site(site / "index.html", tmp_path / "shot.png")
    problems = result["problems"]

    assert result["pages"] == 3 and result["links"] == 3
    by_page = {p.split(":")[0] for p in problems}
    assert by_page == {"index.html", "broken.html", "failed.html"}, problems
    assert [p for p in problems if p.startswith("index.html")] == [
        f"index.html: link 'tables/gone.csv' points to a missing file "
        f"{(site / 'tables/gone.csv').resolve()}"]
    broken = [p for p in problems if p.startswith("broken.html")]
    assert "broken.html: image 'missing.png' did not load or decode" in broken
    assert any("browser console" in p and "missing.png" in p for p in broken), broken
    # the error cell, and neither the stderr line before it nor the cell after it
    assert [p for p in problems if p.startswith("failed.html")] == [
        "failed.html: error output in In [2]: ZeroDivisionError: division by zero"]
