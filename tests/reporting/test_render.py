"""render_notebook executes the main results template in tmp; ensure_kernel finds or registers
a real Jupyter kernelspec."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import papermill
import pytest

from samlora.reporting.render import ensure_kernel, render_notebook

# A summary as ``aggregate`` writes it, with values chosen so that the expected cells below can
# be rounded by hand: two seeds on DRIVE, one seed (no std) and no clDice on CHASE.
SUMMARY_CSV = """\
method,train_set,test_set,n_seeds,dice_mean,dice_std,iou_mean,iou_std,auc_mean,auc_std,\
cldice_mean,cldice_std
topolora_sam,drive,drive,2,0.71236,0.03352,0.55318,0.04071,0.9508,0.0026,0.68449,0.02151
topolora_sam,drive,chase,1,0.6404,,0.4711,,0.8899,,,
"""
EXPECTED_ROWS = [  # Dice, IoU, AUC, clDice: 3 decimals, "mean ± std", "–" for no value
    ["0.712 ± 0.034", "0.553 ± 0.041", "0.951 ± 0.003", "0.684 ± 0.022"],
    ["0.640", "0.471", "0.890", "–"],
]


def _table_html(nb_path: Path) -> str:
    """The HTML output of the executed notebook's main-table cell."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"
             and "table = main_table(" in "".join(c["source"])]
    assert len(cells) == 1
    outs = [o for o in cells[0]["outputs"] if "text/html" in o.get("data", {})]
    assert len(outs) == 1
    return "".join(outs[0]["data"]["text/html"])


def test_render_main_results(results: dict[str, Path], repo_root: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.csv"
    summary.write_text(SUMMARY_CSV, encoding="utf-8")
    out = tmp_path / "reports"
    params = {
        "summary_csv": summary,
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
    table = _table_html(out / "main_results.ipynb")
    header = re.findall(r"<th>([^<]*)</th>", table)
    assert [h for h in header if h in ("Dice", "IoU", "AUC", "clDice")] == [
        "Dice", "IoU", "AUC", "clDice"]
    rows = [re.findall(r"<td>([^<]*)</td>", tr)
            for tr in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)]
    assert [r for r in rows if r] == EXPECTED_ROWS
    assert table.index(">chase<") > table.index(">drive<")  # rows in the summary's order
    html = (out / "main_results.html").read_text(encoding="utf-8")
    for cell in EXPECTED_ROWS[0] + EXPECTED_ROWS[1]:
        assert f"<td>{cell}</td>" in html
    assert "data:image/png;base64" in html
    assert {p.name for p in (out / "figures").iterdir()} == {
        f"{stem}.{ext}" for stem in ("per_image_dice", "overlay_drive_drive_02")
        for ext in ("png", "pdf")}
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


@pytest.fixture
def jupyter_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Jupyter's user-level folders moved into tmp (the environment's own stay as they are)."""
    dirs = {name: tmp_path / name for name in ("path", "data", "config", "runtime")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(dirs["path"]))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(dirs["data"]))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(dirs["config"]))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(dirs["runtime"]))
    return dirs


def test_kernel_found_on_jupyter_path_and_foreign_interpreter_warned(
        jupyter_home: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    spec_dir = jupyter_home["path"] / "kernels" / "samlora-other"
    spec_dir.mkdir(parents=True)
    argv = ["/opt/other-env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "other", "language": "python"}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="samlora.reporting.render"):
        assert ensure_kernel("samlora-other") == "/opt/other-env/bin/python"
    assert "runs /opt/other-env/bin/python, not this interpreter" in caplog.text
    with pytest.raises(RuntimeError, match="no Jupyter kernel named 'nope'"):
        ensure_kernel("nope")


def test_kernel_is_registered_in_the_venv_when_missing(jupyter_home: dict[str, Path],
                                                       tmp_path: Path) -> None:
    """In a fresh venv whose own ``python3`` kernelspec is unusable (it names a kernel
    provisioner that is not installed), ``ensure_kernel`` registers a working one under that
    venv's prefix for real, and nothing under the user's Jupyter folders."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv),
                                                       "platbase": str(venv)}))
    # the fresh venv sees this environment's packages (samlora, jupyter_client, ipykernel)
    (purelib / "parent_env.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n", encoding="utf-8")
    stale = venv / "share" / "jupyter" / "kernels" / "python3"
    stale.mkdir(parents=True)
    (stale / "kernel.json").write_text(json.dumps({
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "stale", "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "samlora-test-no-such"}},
    }), encoding="utf-8")
    script = textwrap.dedent("""
        import json, logging, sys
        from samlora.reporting.render import ensure_kernel
        logging.basicConfig(level=logging.INFO)
        print(json.dumps({"interpreter": ensure_kernel("python3"),
                          "executable": sys.executable, "prefix": sys.prefix}))
    """)
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                          text=True, env={**os.environ, "JUPYTER_PREFER_ENV_PATH": "1",
                                          "PYTHONNOUSERSITE": "1"})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(got["prefix"]).resolve() == venv.resolve()
    assert "registered Jupyter kernel 'python3'" in done.stderr
    spec = json.loads((stale / "kernel.json").read_text(encoding="utf-8"))
    argv = spec["argv"]
    assert argv[0] == got["executable"] and argv[argv.index("-m") + 1] == "ipykernel_launcher"
    assert "kernel_provisioner" not in spec.get("metadata", {})
    assert got["interpreter"] == got["executable"]  # the kernel runs the venv's interpreter
    assert [p for d in ("path", "data") for p in jupyter_home[d].rglob("*")] == []


def _fresh_venv(tmp_path: Path) -> Path:
    """A new venv (no kernelspec under its prefix) that imports this environment's packages."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv),
                                                       "platbase": str(venv)}))
    (purelib / "parent_env.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n", encoding="utf-8")
    return venv


def _ensure_kernel_error(venv: Path, preamble: str = "") -> dict[str, str]:
    """Run ``ensure_kernel("python3")`` in ``venv`` after ``preamble``; the error it raised."""
    script = preamble + textwrap.dedent("""
        import json
        from samlora.reporting.render import ensure_kernel
        try:
            ensure_kernel("python3")
        except Exception as err:
            print(json.dumps({"type": type(err).__name__, "message": str(err),
                              "cause": type(err.__cause__).__name__}))
        else:
            print(json.dumps({"type": None}))
    """)
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                          text=True, env={**os.environ, "JUPYTER_PREFER_ENV_PATH": "1",
                                          "PYTHONNOUSERSITE": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_kernel_without_ipykernel_is_a_runtime_error(jupyter_home: dict[str, Path],
                                                     tmp_path: Path) -> None:
    """No ``python3`` kernelspec anywhere and ipykernel not importable: the documented
    RuntimeError, not a ModuleNotFoundError from the import."""
    venv = _fresh_venv(tmp_path)
    got = _ensure_kernel_error(venv, 'import sys\nsys.modules["ipykernel"] = None\n')
    assert got["type"] == "RuntimeError", got
    assert got["cause"] == "ModuleNotFoundError"
    assert got["message"].startswith(
        "no usable Jupyter kernel 'python3' (install ipykernel in this environment): ")
    assert not (venv / "share" / "jupyter").exists()  # nothing was registered


def test_unusable_kernel_on_jupyter_path_is_a_runtime_error(jupyter_home: dict[str, Path],
                                                            tmp_path: Path) -> None:
    """A ``python3`` kernelspec on JUPYTER_PATH that names a kernel provisioner that is not
    installed comes before the one ``ensure_kernel`` registers in the venv: a RuntimeError
    naming the unusable spec's folder, not a bare NoSuchKernel."""
    stale = jupyter_home["path"] / "kernels" / "python3"
    stale.mkdir(parents=True)
    (stale / "kernel.json").write_text(json.dumps({
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "stale", "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "samlora-test-no-such"}},
    }), encoding="utf-8")
    venv = _fresh_venv(tmp_path)
    got = _ensure_kernel_error(venv)
    assert got["type"] == "RuntimeError", got
    assert got["cause"] == "NoSuchKernel"
    assert got["message"].startswith(f"no usable Jupyter kernel 'python3' (the kernelspec in "
                                     f"{stale}, found before the one registered under "), got
    assert "remove or fix it" in got["message"]
