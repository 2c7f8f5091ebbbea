"""Step times from the workflow's own ``benchmark:`` files, for the cost table.

Snakemake writes ``logs/benchmarks/train_model/<run>.tsv`` and
``logs/benchmarks/predict_test_set/<run>/<test set>.tsv`` for every job (wall seconds in
the ``s`` column, one line per repeat). After a real run on a cluster they are the best
step times there are: :func:`rows_from_benchmarks` turns them into rows of
``benchmarks/step_times.csv`` for the device they ran on
(``python benchmarks/bench_cost.py --from-benchmarks logs/benchmarks --device cuda
--device-name "<GPU>"``), so the next ``plan --cost`` uses them.

Per backbone and input size, the median over jobs of:

- ``train_s``: a training job's seconds / (train images × epochs), over runs whose encoder
  trains (validation, data loading and start-up included: an upper bound of a step);
- ``decoder_s``: the same over frozen-encoder runs (the cached encodes included);
- ``encode_s``: a prediction job's seconds / (test images × prompt modes) (the whole
  forward pass of an image: an upper bound of the encoder's share).

A figure no job measured is kept from the table's row of the same backbone, size and
device; a row that would still lack one is left out, and the note says so.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from samlora.study.cost import _modes, _size, encoder_trains, split_counts
from samlora.study.studies import Study

FIELDS = ("train_s", "encode_s", "decoder_s")


def job_seconds(tsv: Path) -> float:
    """Mean wall seconds of a Snakemake benchmark file (its ``s`` column)."""
    return float(pd.read_csv(tsv, sep="\t")["s"].mean())


def rows_from_benchmarks(bench_dir: Path, studies: Mapping[str, Study], device: str,
                         device_name: str, table: Sequence[Mapping[str, str]] = ()
                         ) -> tuple[list[dict], list[str]]:
    """Rows of the step-time table from the benchmark files under ``bench_dir``, and notes
    on what was left out."""
    runs = {r.name: r for s in studies.values() for r in s.runs}
    evals = {(r.name, t): r for s in studies.values() for r, t in s.evaluations}
    samples: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    arch: dict[tuple[str, int], str] = {}
    for name, spec in runs.items():
        tsv = Path(bench_dir) / "train_model" / f"{name}.tsv"
        epochs = int(spec.train.get("epochs", 0) or 0)
        if not tsv.is_file() or epochs == 0:
            continue
        images = sum(split_counts(spec, d)[0] for d in spec.train_sets)
        field = ("train_s" if encoder_trains(spec)
                 or spec.train.get("embedding_cache", "auto") == "off" else "decoder_s")
        key = (spec.backbone, _size(spec))
        samples[key][field].append(job_seconds(tsv) / (images * epochs))
        arch[key] = str(spec.backbone_cfg["arch"])
    for (name, test_set), spec in evals.items():
        tsv = Path(bench_dir) / "predict_test_set" / name / f"{test_set}.tsv"
        if not tsv.is_file():
            continue
        key = (spec.backbone, _size(spec))
        per_image = job_seconds(tsv) / (split_counts(spec, test_set)[1] * _modes(spec))
        samples[key]["encode_s"].append(per_image)
        arch[key] = str(spec.backbone_cfg["arch"])
    old = {(r["backbone"], int(r["img_size"]), r["device"]): r for r in table}
    rows, notes = [], []
    for (backbone, size), measured in sorted(samples.items()):
        prior = old.get((backbone, size, device), {})
        row = {"backbone": backbone, "arch": arch[(backbone, size)], "img_size": size,
               "device": device, "steps": sum(len(v) for v in measured.values()),
               "device_name": f"{device_name} (Snakemake benchmarks of "
                              f"{sum(len(v) for v in measured.values())} jobs)",
               "measured": dt.date.today().isoformat()}
        for field in FIELDS:
            if measured.get(field):
                row[field] = round(statistics.median(measured[field]), 4)
            elif prior.get(field, "") != "":
                row[field] = float(prior[field])
        missing = [f for f in FIELDS if f not in row]
        if missing:
            notes.append(f"{backbone} at {size} px on {device}: no job measured "
                         f"{', '.join(missing)} and the table has no such row; left out")
            continue
        rows.append(row)
    return rows, notes
