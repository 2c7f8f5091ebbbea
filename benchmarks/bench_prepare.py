"""Benchmark the prepare step: images/s for DRIVE (565×584) and Drishti-GS1 (~2050×1750).

Each dataset is prepared from the data mirror into a temporary folder three times: a cold
run (every PNG decoded, checked and written), an idempotent rerun (every file compared,
none written), and a run at ``data.resolution: 1024`` (resizing plus the native-size copies).
The mirror's Drishti-GS1 is a 20-image subset, prepared as such.

    python benchmarks/bench_prepare.py --out benchmarks/results.json [--mirror ../shared/data]

The figures go under the ``prepare`` key of the results file; the other keys (written by
other benchmark scripts) are kept (read, merge, write to a temporary file, rename).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("drive", "drishti_gs1")
FOV_CFG = {"red_threshold": 0.1, "radius": 3}


def _timed_prepare(name: str, root: Path, out: Path, policy: object, workers: int
                   ) -> dict[str, float]:
    from samlora.data.prepare import prepare_dataset

    start = time.perf_counter()
    index = prepare_dataset(name, root, out, FOV_CFG, workers=workers, policy=policy)
    seconds = time.perf_counter() - start
    megapixels = float((index["native_height"] * index["native_width"]).sum()) / 1e6
    return {"images": int(len(index)), "seconds": round(seconds, 3),
            "images_per_s": round(len(index) / seconds, 2),
            "megapixels_per_s": round(megapixels / seconds, 2)}


def bench_dataset(name: str, mirror: Path, workers: int) -> dict[str, object]:
    """Cold, rerun and resized timings of one dataset prepared from ``mirror``."""
    from samlora.data.download import fetch_dataset
    from samlora.data.policy import PreparePolicy

    native = PreparePolicy(allow_subset=True)
    resized = PreparePolicy(resolution=1024, allow_subset=True)
    with tempfile.TemporaryDirectory(prefix=f"bench-prepare-{name}-") as tmp:
        base = Path(tmp)
        root = fetch_dataset(name, base / "raw", mirror, base / "lock.json", allow_subset=True)
        return {"cold": _timed_prepare(name, root, base / "native", native, workers),
                "rerun": _timed_prepare(name, root, base / "native", native, workers),
                "resized_1024": _timed_prepare(name, root, base / "resized", resized, workers)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--mirror", type=Path, default=Path(os.environ.get(
        "SAMLORA_MIRROR", REPO.parent / "shared" / "data")))
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.path.insert(0, str(REPO / "src"))
    from samlora.utils.io import update_json

    results = {}
    for name in DATASETS:
        results[name] = bench_dataset(name, args.mirror.resolve(), args.workers)
        print(json.dumps({name: results[name]}), flush=True)
    update_json(args.out, {"prepare": {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "workers": args.workers},
        "datasets": results}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
