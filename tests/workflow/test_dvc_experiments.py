"""`dvc exp run` as a DVC user runs it, on real DRIVE images, in a scratch git repository.

The demo preset with a cheap override (tests/fixtures/dvc_tiny.yaml: one tiny-SAM run, one
epoch) is chosen the way DVC records it, ``preset:`` in params.yaml. After one `dvc repro`
and a commit of what git keeps (dvc.lock, metrics, summaries, plots):

- ``-S train.lr=1e-5`` on params.yaml is refused: the demo preset sets train.lr and would
  win, so nothing would change (the preset shadowing defect);
- ``-S presets/demo.yaml:train.lr=1e-5`` in the workspace retrains the run with lr 1e-05,
  the exact string DVC writes, read as a float;
- the same edit with another value, ``--queue``d and run in DVC's temporary copy, retrains
  too (the copy has no .snakemake folder; the records inside the outputs stand in);
- ``dvc exp show`` lists both experiments with their own, changed metric, ``dvc plots
  show`` draws the training curves and summary bars, and the DVC cache holds no resume
  state (last.pt).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import venv_env

pytestmark = [pytest.mark.slow]  # one repro and two experiments: ~8 min here

RUN = "decoder_only_tiny__drive__seed0"
METRIC = ("dvc_tiny", "decoder_only_tiny", "drive", "drive", "auc")
FILES = ["Snakefile", "environment.yml", "params.yaml", "presets", "workflow", "notebooks",
         "dvc.yaml", "src", ".dvc", ".dvcignore", ".gitignore"]


def _run(cmd: list[str], cwd: Path, check: bool = True,
         timeout: int = 900) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=venv_env(), capture_output=True, text=True,
                         timeout=timeout, check=False)
    if check:
        assert res.returncode == 0, f"{cmd}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _commit(work: Path, message: str) -> None:
    _run(["git", "add", "-A"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], work)


@pytest.fixture(scope="module")
def repo(repo_root: Path, mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dvcexp")
    for name in FILES:
        src = repo_root / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, work / name)
    shutil.rmtree(work / ".dvc" / "tmp", ignore_errors=True)
    demo = work / "presets/demo.yaml"
    demo.write_text(demo.read_text().replace("  mirror: ../shared/data", f"  mirror: {mirror}"))
    shutil.copy2(repo_root / "tests/fixtures/dvc_tiny.yaml", work / "presets/dvc_tiny.yaml")
    params = work / "params.yaml"
    params.write_text(params.read_text().replace(
        "\npreset: []\n", "\npreset: [presets/demo.yaml, presets/dvc_tiny.yaml]\n", 1))
    _run(["git", "init", "-q"], work)
    for key, value in (("user.name", "samlora test"), ("user.email", "test@samlora.invalid")):
        _run(["git", "config", key, value], work)  # DVC commits each experiment
    _commit(work, "init")
    _run(["dvc", "repro"], work)
    _commit(work, "baseline results")
    return work


def _metric(exp: dict) -> float:
    node = exp["data"]["metrics"]["results/metrics.json"]["data"]
    for key in METRIC:
        node = node[key]
    return float(node)


def _experiments(work: Path) -> dict[str, dict]:
    """dvc exp show --json as {name or 'baseline': record}."""
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], work).stdout)
    out = {}
    for commit in shown:
        if commit["rev"] == "workspace":
            continue
        out["baseline"] = commit
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                out[rev["name"]] = rev
    return out


def test_baseline_commits_its_small_results_and_caches_no_resume_state(repo: Path) -> None:
    tracked = set(_run(["git", "ls-files"], repo).stdout.split())
    assert {"dvc.lock", "results/metrics.json", "results/dvc_tiny/summary.csv",
            f"plots/train/{RUN}.csv", "plots/summary/dvc_tiny.csv"} <= tracked
    assert not any(p.startswith(("runs/", "results/runs/", "data/")) for p in tracked)
    assert (repo / "runs" / RUN / "last.pt").is_file()  # kept for resuming, in the workspace
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    runs_md5 = next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "runs")
    listing = repo / ".dvc/cache/files/md5" / runs_md5[:2] / runs_md5[2:]
    names = [e["relpath"] for e in json.loads(listing.read_text())]
    assert f"{RUN}/adapter.safetensors" in names
    assert not [n for n in names if n.endswith("last.pt") or "__pycache__" in n]
    lock_text = (repo / "dvc.lock").read_text()
    assert "presets/demo.yaml" in lock_text and "preset:" in lock_text  # the choice is recorded
    # importing the package writes bytecode under src/: not a change
    (repo / "src/samlora/__pycache__").mkdir(exist_ok=True)
    (repo / "src/samlora/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    assert json.loads(_run(["dvc", "status", "--json"], repo).stdout) == {}


def test_an_edit_the_preset_would_override_is_refused(repo: Path) -> None:
    res = _run(["dvc", "exp", "run", "-S", "train.lr=1e-5"], repo, check=False)
    try:
        assert res.returncode != 0
        assert ("params.yaml: train.lr edited, but the active preset presets/demo.yaml sets it"
                in res.stdout + res.stderr)
    finally:
        _run(["git", "checkout", "--", "params.yaml"], repo)


def test_workspace_and_queued_experiments_retrain_and_show_their_metric(repo: Path) -> None:
    before = _metric(_experiments(repo)["baseline"])
    _run(["dvc", "exp", "run", "-n", "ws-lr", "-S", "presets/demo.yaml:train.lr=1e-5"], repo)
    assert "\n  lr: 1e-05" in (repo / "presets/demo.yaml").read_text()  # as DVC writes it
    config = yaml.safe_load((repo / "runs" / RUN / "config.yaml").read_text())
    assert config["train"]["lr"] == 1e-05
    _run(["git", "checkout", "--", "."], repo)  # back to the baseline's files for the queue
    _run(["dvc", "checkout", "--force"], repo)
    _run(["dvc", "exp", "run", "--queue", "-n", "q-lr", "-S", "presets/demo.yaml:train.lr=3e-2"],
         repo)
    _run(["dvc", "exp", "run", "--run-all"], repo)
    exps = _experiments(repo)
    assert {"ws-lr", "q-lr"} <= set(exps), list(exps)
    assert exps["q-lr"]["data"].get("status", "Success") == "Success"
    values = {name: _metric(exps[name]) for name in ("baseline", "ws-lr", "q-lr")}
    assert len(set(values.values())) == 3, values  # each experiment trained its own weights
    assert values["baseline"] == before
    demo = exps["q-lr"]["data"]["params"]["presets/demo.yaml"]["data"]
    assert demo["train"]["lr"] == pytest.approx(3e-2)


def test_plots_show_draws_the_curves_and_the_bars(repo: Path) -> None:
    shown = json.loads(_run(["dvc", "plots", "show", "--json"], repo).stdout)
    assert not shown.get("errors"), shown.get("errors")
    assert {f"plots/train/{RUN}.csv", "plots/summary/dvc_tiny.csv"} <= set(shown["data"])
    bars = shown["data"]["plots/summary/dvc_tiny.csv"][0]["content"]["data"]["values"]
    assert {"decoder_only_tiny drive > drive"} <= {row["name"] for row in bars}
