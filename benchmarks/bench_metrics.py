"""Benchmark the per-image metrics on the 20 DRIVE test images (565×584).

Labels and FOV masks come from the data mirror (1st observer); the probability map is
synthetic and fixed by a seed: the label blurred (σ = 1.5 px), with uniform noise added
and a random 3 % of FOV pixels flipped, so that every metric sees false positives and
negatives, broken vessels and extra loops. Timed, each as the fastest of ``--repeats``:

- ``seconds``: one ``compute_metrics`` call per image with every name of ``ALL_METRICS``
  (``pixel_mm`` given), summed over the 20 images (loading the masks not included);
- ``per_metric_seconds``: ``compute_metrics`` with that one name, summed over the images;
- ``per_mode_seconds``: each evaluation mode of ``samlora.evaluation.modes`` (its resize
  to the mode's geometry included; ours with every metric), summed over the images.

    python benchmarks/bench_metrics.py --out benchmarks/results.json [--mirror ../shared/data]

The figures go under the ``metrics`` key of the results file (target: ``seconds`` < 5);
the other keys (written by other benchmark scripts) are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _gif(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")) >= 128


def load_cases(mirror: Path, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(prob, gt, fov)`` of the 20 DRIVE test images with the synthetic probability map."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    cases = []
    for n in range(1, 21):
        test = mirror / "DRIVE" / "test"
        gt = _gif(test / "1st_manual" / f"{n:02d}_manual1.gif")
        fov = _gif(test / "mask" / f"{n:02d}_test_mask.gif")
        prob = ndimage.gaussian_filter(gt.astype(np.float64), 1.5) * 1.4
        prob += rng.uniform(-0.15, 0.15, gt.shape)
        flip = (rng.random(gt.shape) < 0.03) & fov
        prob = np.where(flip, 1.0 - prob, prob)
        cases.append((np.clip(prob, 0.0, 1.0).astype(np.float32), gt, fov))
    return cases


def _time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--mirror", type=Path, default=Path(os.environ.get(
        "SAMLORA_MIRROR", REPO.parent / "shared" / "data")))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from samlora.evaluation.metrics import ALL_METRICS, compute_metrics
    from samlora.utils.io import update_json

    cases = load_cases(args.mirror.resolve())
    pixel_mm = 0.0125  # DRIVE-like: ~45° FOV over ~540 px

    def run(names: tuple[str, ...]) -> None:
        for prob, gt, fov in cases:
            compute_metrics(prob, gt, fov, threshold=0.5, names=names, pixel_mm=pixel_mm)

    from samlora.evaluation.modes import MODES, CaseContext, score

    def run_mode(name: str) -> None:
        for i, (prob, gt, fov) in enumerate(cases):
            score(MODES[name], prob, gt, fov, gt, CaseContext("drive", i, len(cases),
                                                          pixel_mm=pixel_mm),
                  tuple(ALL_METRICS), 0.5)

    total = _time(lambda: run(tuple(ALL_METRICS)), args.repeats)
    per_mode = {name: round(_time(lambda n=name: run_mode(n), args.repeats), 4)
                for name in MODES}
    per_metric = {name: round(_time(lambda n=name: run((n,)), args.repeats), 4)
                  for name in ALL_METRICS}
    result = {"images": len(cases), "image_size": list(cases[0][1].shape),
              "repeats": args.repeats, "seconds": round(total, 4), "target_seconds": 5.0,
              "per_metric_seconds": per_metric, "per_mode_seconds": per_mode,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    print(json.dumps(result, indent=1), flush=True)
    update_json(args.out, {"metrics": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
