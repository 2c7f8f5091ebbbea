"""render_notebook executes the main results template on fixture results in tmp."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import papermill
import pytest

from samlora.reporting.render import render_notebook
from samlora.reporting.tables import main_table


def test_render_main_results(results: dict[str, Path], repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    params = {
        "summary_csv": results["summary"],
        "per_image_csvs": sorted(results["root"].glob("**/metrics_per_image.csv")),
        "processed_root": results["processed_root"],
        "results_root": results["root"],
        "example_run": results["run"],
        "example_case": "drive_02",
        "threshold": 0.5,
        "figures_dir": out / "figures",
    }
    render_notebook(repo_root / "notebooks/main_results.ipynb", out / "main_results.ipynb",
                    out / "main_results.html", params)
    html = (out / "main_results.html").read_text(encoding="utf-8")
    table = main_table(pd.read_csv(results["summary"]))
    for cell in table.iloc[0]:
        assert cell in html  # e.g. "0.812 ± 0.004"
    assert "data:image/png;base64" in html
    assert {p.name for p in (out / "figures").iterdir()} == {
        "per_image_dice.png", "overlay_drive_drive_02.png"}
    assert sorted(p.name for p in out.iterdir()) == ["figures", "main_results.html",
                                                     "main_results.ipynb"]


def test_failed_notebook_leaves_no_output(results: dict[str, Path], repo_root: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "reports"
    params = {"summary_csv": str(tmp_path / "absent.csv"), "example_run": str(results["run"])}
    with pytest.raises(papermill.PapermillExecutionError, match="absent.csv"):
        render_notebook(repo_root / "notebooks/main_results.ipynb", out / "nb.ipynb",
                        out / "nb.html", params)
    assert list(out.iterdir()) == []


def test_kernel_is_registered_in_the_venv_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from samlora.reporting.render import ensure_kernel

    real = KernelSpecManager.get_kernel_spec
    calls: list[str] = []

    def first_missing(self, name):  # the first lookup fails, as with no kernelspec at all
        calls.append(name)
        if len(calls) == 1:
            raise NoSuchKernel(name)
        return real(self, name)

    installed: list[dict] = []
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", first_missing)
    monkeypatch.setattr(ipykernel.kernelspec, "install", lambda **kw: installed.append(kw))
    assert ensure_kernel("python3") in ("python", "python3", sys.executable)
    assert installed == [{"prefix": sys.prefix, "kernel_name": "python3"}]
    with pytest.raises(RuntimeError, match="no Jupyter kernel named 'nope'"):
        calls.clear()
        ensure_kernel("nope")
