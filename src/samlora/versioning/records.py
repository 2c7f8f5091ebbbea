"""Snakemake's job metadata, recorded inside the DVC outputs and adopted in fresh copies.

Snakemake decides that a job is out of date from its metadata in ``.snakemake/metadata``
(the params, code, input set and software environment the output was made with) and from
file times. That folder is not in git or in DVC: a ``dvc exp run --temp`` or ``--queue``
copy, or a new clone after ``dvc pull``, has the outputs but no metadata, and Snakemake
then reruns nothing after a params edit ("Nothing to be done").

:func:`record` (after each Snakemake run of a DVC stage) copies the metadata of every output
into ``<out>/.snakemake-records/`` of the DVC output folder that holds it (git-tracked
results: ``results/.snakemake-records/``), named as Snakemake names them. :func:`adopt`
(before each run) copies records back where the metadata is missing, and gives those
outputs file times in the order they were made, just before now: newer than the checked
out sources, so times alone rerun nothing, and the params edit reruns what it changes.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import time
from pathlib import Path

from samlora.utils.io import write_text

log = logging.getLogger(__name__)

RECORDS = ".snakemake-records"
METADATA = Path(".snakemake") / "metadata"
#: Git-tracked folder whose outputs are recorded beside them (not a DVC output).
GIT_TRACKED = ("results",)
#: Spacing of adopted outputs' file times, in seconds (their order is kept).
TIME_STEP = 1e-4


def dvc_out_dirs(repo: Path) -> list[Path]:
    """The DVC output folders of dvc.yaml's stages (relative), longest first."""
    from samlora.config import load_yaml12

    spec = load_yaml12((repo / "dvc.yaml").read_text()) or {}
    outs: list[str] = []
    for stage in (spec.get("stages") or {}).values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind) or []:
                outs.append(entry if isinstance(entry, str) else next(iter(entry)))
    dirs = {Path(p) for p in outs if not Path(p).suffix}
    return sorted(dirs, key=lambda p: (-len(p.parts), str(p)))


def record_roots(repo: Path) -> list[Path]:
    """Every folder that may hold a records folder: the DVC outputs, then the git ones."""
    return [*dvc_out_dirs(repo), *(Path(p) for p in GIT_TRACKED)]


def output_of(name: Path) -> str:
    """The output path a metadata file (relative to the metadata folder) describes."""
    parts = [p.removeprefix("@") for p in name.parts]
    return base64.urlsafe_b64decode("".join(parts)).decode()


def root_of(output: str, roots: list[Path]) -> Path | None:
    path = Path(output)
    for root in roots:
        if path.parts[: len(root.parts)] == root.parts and path != root:
            return root
    return None


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def record(repo: Path) -> int:
    """Copy the metadata of every existing output under a record root into its records
    folder, and drop records of outputs that are gone. Returns the number written."""
    repo = Path(repo)
    roots = record_roots(repo)
    meta = repo / METADATA
    written = 0
    kept: dict[Path, set[Path]] = {root: set() for root in roots}
    for name in _files(meta):
        try:
            output = output_of(name)
        except ValueError:
            continue
        root = root_of(output, roots)
        if root is None or not (repo / output).exists():
            continue
        kept[root].add(name)
        dest = repo / root / RECORDS / name
        text = (meta / name).read_text()
        if not dest.is_file() or dest.read_text() != text:
            write_text(dest, text)
            written += 1
    for root, names in kept.items():
        for name in _files(repo / root / RECORDS):
            if name not in names and not (repo / output_of(name)).exists():
                (repo / root / RECORDS / name).unlink()
    log.info("recorded the metadata of %d changed outputs", written)
    return written


def adopt(repo: Path, force: bool = False) -> int:
    """Copy records back into ``.snakemake/metadata`` where an output has none (all of them
    with ``force``, e.g. after ``dvc exp apply`` or ``dvc checkout`` replaced the outputs),
    and give the adopted outputs file times in the order their jobs ended. Returns the
    number adopted."""
    repo = Path(repo)
    meta = repo / METADATA
    adopted: list[tuple[float, Path]] = []
    for root in record_roots(repo):
        records = repo / root / RECORDS
        for name in _files(records):
            output = repo / output_of(name)
            dest = meta / name
            if not output.exists() or (dest.is_file() and not force):
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(records / name, dest)
            endtime = json.loads(dest.read_text()).get("endtime") or 0.0
            adopted.append((float(endtime), output))
    adopted.sort(key=lambda item: (item[0], str(item[1])))
    start = time.time() - TIME_STEP * (len(adopted) + 1)
    for i, (_, output) in enumerate(adopted):
        stamp = start + TIME_STEP * i
        os.utime(output, (stamp, stamp), follow_symlinks=False)
    if adopted:
        log.info("adopted the recorded metadata of %d outputs", len(adopted))
    return len(adopted)
