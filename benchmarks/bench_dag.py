"""Benchmark building the Snakemake DAG: seconds and jobs/s of ``snakemake -n all`` per study.

The repository's Snakefile, params.yaml, presets/, workflow/, notebooks/ and dvc.yaml are
copied to a temporary folder (no data, runs or results: every job is out of date), and
``snakemake -n --cores 1 all`` (a dry run, the venv's snakemake) is timed there

- with no ``--config``: every study of ``studies.enabled`` (what ``snakemake all`` builds);
- for each enabled study alone (``--config study=<name>``);
- for subsets of the first 1, 3 and 6 enabled studies and all of them
  (``--config study=a,b,c``).

Each command runs ``--repeats`` times (default 2; ``.snakemake/`` removed before each) and
keeps the fastest wall-clock time, which includes starting Python and Snakemake. The job
count is the ``total`` row of Snakemake's "Job stats" table. A least-squares line
``seconds = a + b * jobs`` over every measured command, with its R², tells whether the time
grows linearly in jobs (``a`` is the fixed start-up cost).

    python benchmarks/bench_dag.py --out benchmarks/results.json

The figures go under the ``dag`` key of the results file; the other keys (written by
other benchmark scripts) are kept (read, merge, write to a temporary file, rename).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "params.yaml", "dvc.yaml", "presets", "workflow", "notebooks")
SUBSETS = (1, 3, 6)  # first k enabled studies, then all of them
TARGET_S = 10.0  # the target: every study's DAG at once in under 10 s
TOTAL = re.compile(r"^Job stats:\s*\n.*?^total\s+(\d+)\s*$", re.M | re.S)


def snakemake_exe() -> str:
    """The venv's snakemake (beside this interpreter), else the one on PATH."""
    beside = Path(sys.executable).parent / "snakemake"
    found = str(beside) if beside.is_file() else shutil.which("snakemake")
    if not found:
        raise SystemExit("snakemake not found beside the interpreter or on PATH")
    return found


def scratch_copy(dest: Path) -> None:
    """Copy what the workflow reads into ``dest`` (caches and editor files left out)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def dry_run(exe: str, workdir: Path, studies: list[str] | None) -> tuple[int, float]:
    """Jobs and wall-clock seconds of one ``snakemake -n all`` in ``workdir``."""
    cmd = [exe, "-n", "--cores", "1", "all"]
    if studies is not None:
        cmd += ["--config", "study=" + ",".join(studies)]
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    env = dict(os.environ, PATH=f"{Path(exe).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n"
                         f"{(proc.stdout + proc.stderr)[-3000:]}")
    match = TOTAL.search(proc.stdout + proc.stderr)
    if not match:
        raise SystemExit(f"{' '.join(cmd)}: no 'Job stats' total in its output")
    return int(match.group(1)), seconds


def measure(exe: str, workdir: Path, studies: list[str] | None, repeats: int) -> dict:
    """The fastest of ``repeats`` dry runs: jobs, seconds, jobs/s (jobs must agree)."""
    runs = [dry_run(exe, workdir, studies) for _ in range(repeats)]
    jobs = {j for j, _ in runs}
    if len(jobs) != 1:
        raise SystemExit(f"study={studies}: job counts differ between repeats: {sorted(jobs)}")
    count, seconds = jobs.pop(), min(s for _, s in runs)
    row = {"jobs": count, "seconds": round(seconds, 3), "jobs_per_s": round(count / seconds, 1),
           "all_seconds": [round(s, 3) for _, s in runs]}
    if studies is not None:
        row["studies"] = list(studies)
    return row


def linear_fit(points: list[tuple[int, float]]) -> dict[str, float]:
    """Least-squares ``seconds = a + b * jobs`` and its R²."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    b = sxy / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in points)
    ss_tot = sum((y - my) ** 2 for _, y in points)
    return {"a_s": round(a, 4), "b_ms_per_job": round(1000 * b, 4),
            "r2": round(1 - ss_res / ss_tot, 4) if ss_tot else 1.0, "points": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from omegaconf import OmegaConf

    from samlora.study.studies import enabled_studies
    from samlora.utils.io import update_json

    enabled = enabled_studies(OmegaConf.load(REPO / "params.yaml"))
    exe = snakemake_exe()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    cache: dict[tuple[str, ...] | None, dict] = {}

    def timed(studies: list[str] | None) -> dict:
        key = tuple(studies) if studies is not None else None
        if key not in cache:
            cache[key] = measure(exe, workdir, studies, args.repeats)
            print(json.dumps({"study": "+".join(key) if key else "(enabled)",
                              **{k: cache[key][k] for k in ("jobs", "seconds", "jobs_per_s")}}),
                  flush=True)
        return cache[key]

    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        workdir = Path(tmp)
        scratch_copy(workdir)
        every = timed(None)
        per_study = {name: timed([name]) for name in enabled}
        subsets = {str(k): timed(enabled[:k]) for k in SUBSETS if k < len(enabled)}
        subsets["all"] = timed(list(enabled))

    fit = linear_fit([(row["jobs"], row["seconds"]) for row in cache.values()])
    update_json(args.out, {"dag": {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "snakemake": version},
        "command": "snakemake -n --cores 1 all [--config study=a,b,c]",
        "repeats": args.repeats, "kept": "min",
        "all": {"studies": list(enabled), **every},
        "per_study": per_study,
        "subsets": subsets,
        "fit": fit,
        "target": {"all_under_s": TARGET_S, "met": every["seconds"] < TARGET_S}}})
    print(json.dumps({"fit": fit}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
