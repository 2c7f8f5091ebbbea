"""What a cluster run will cost before it is submitted: jobs, GPU-hours and disk per study.

Step times come from ``benchmarks/step_times.csv`` (per backbone, input size and device;
``make bench`` refreshes it with ``benchmarks/bench_cost.py``). Each run costs:

- an encoder that trains (LoRA in the encoder, full fine-tuning, a baseline):
  ``train images × epochs × train_s``;
- a frozen encoder (the embedding cache serves it): each view encoded once
  (``train images × min(epochs, views) × encode_s``, 8 dihedral views with flips and rot90,
  else 1) plus ``train images × epochs × decoder_s``;
- no training (``epochs: 0``, zero-shot): nothing.

Each prediction costs ``test images × (encode_s + prompt modes × decoder_s)``. A size not
measured is scaled from the nearest measured size of that backbone by pixel count (marked
"scaled"). GPU rows are preferred where measured, else CPU rows, and the device used is
printed with every estimate. Disk: the weights (4 B per trainable parameter), ``last.pt``
(weights + two AdamW moments: 12 B), and the probability maps (16-bit PNGs, at most 2 B per
native pixel) of every prediction.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from samlora.config import REPO_ROOT
from samlora.study.runspec import RunSpec
from samlora.study.studies import Study

STEP_TIMES = REPO_ROOT / "benchmarks" / "step_times.csv"
#: Cases per split of the datasets without a split file (a seeded 75/25 split is drawn).
SCANNED = {"g1020": 1020, "grape": 631, "papila": 488}
SCANNED_TEST_SHARE = 0.25
#: Typical native size (px) of each dataset's images, for the disk estimate.
NATIVE_PX = {"drive": 565 * 584, "stare": 700 * 605, "chase_db1": 999 * 960,
             "hrf": 3504 * 2336, "fives": 2048 * 2048, "kvasir_seg": 622 * 530,
             "sl_ssdd": 256 * 256, "drishti_gs1": 2896 * 1944, "refuge2": 1634 * 1634,
             "origa": 3072 * 2048, "g1020": 2400 * 3000, "grape": 1444 * 1444,
             "papila": 2576 * 1934, "idrid": 4288 * 2848}
DIHEDRAL_VIEWS = 8


@dataclass(frozen=True)
class StepTime:
    """Per-image seconds of one backbone at one size on one device."""

    train_s: float
    encode_s: float
    decoder_s: float
    device: str
    scaled: bool = False


def read_step_times(path: Path = STEP_TIMES) -> list[dict[str, str]]:
    """The measured table.

    Raises:
        FileNotFoundError: the table is missing (run ``make bench``).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no step-time table; run `make bench` (or "
                                "`python benchmarks/bench_cost.py`) to measure one")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def step_time(rows: Sequence[Mapping[str, str]], backbone: str, size: int) -> StepTime | None:
    """The step time of ``backbone`` at ``size``: a GPU row before a CPU one; the nearest
    measured size scaled by pixel count when ``size`` itself is not measured."""
    mine = [r for r in rows if r["backbone"] == backbone]
    for device in ("cuda", "cpu"):
        here = [r for r in mine if r["device"] == device]
        if not here:
            continue
        best = min(here, key=lambda r: abs(math.log(int(r["img_size"]) / size)))
        ratio = (size / int(best["img_size"])) ** 2
        name = f"{device}: {best['device_name']}"
        return StepTime(float(best["train_s"]) * ratio, float(best["encode_s"]) * ratio,
                        float(best["decoder_s"]) * ratio, name,
                        scaled=int(best["img_size"]) != size)
    return None


def split_counts(spec: RunSpec, dataset: str) -> tuple[int, int]:
    """(train + val, test) cases of ``dataset``: its prepared index.csv, else its split
    file, else :data:`SCANNED` (read once per folder and dataset)."""
    return _split_counts(str(spec.processed(dataset)), dataset)


@functools.lru_cache(maxsize=None)
def _split_counts(folder: str, dataset: str) -> tuple[int, int]:
    index = Path(folder) / "index.csv"
    if Path(index).is_file():
        split = pd.read_csv(index, dtype=str, keep_default_na=False)["split"]
        return int(split.isin(["train", "val"]).sum()), int((split == "test").sum())
    from samlora.data.split_files import SplitFileError, load_split

    try:
        splits = load_split(dataset).splits
        return (len(splits.get("train", ())) + len(splits.get("val", ())),
                len(splits.get("test", ())))
    except SplitFileError:
        total = SCANNED.get(dataset)
        if total is None:
            raise KeyError(f"{dataset}: no split file and no known case count; prepare it "
                           "first (`snakemake prepare_all`)") from None
        test = round(total * SCANNED_TEST_SHARE)
        return total - test, test


@functools.lru_cache(maxsize=None)
def trainable_count(method_json: str, backbone_json: str) -> int:
    """Trainable parameters of a method on a backbone (random weights, no checkpoint read),
    built on the ``meta`` device where the architecture allows it (shapes only: no memory),
    else on the CPU (SAM 2's Hiera reads a tensor's value while it is built)."""
    import torch

    from samlora.models.registry import build_model
    from samlora.models.segmenter import count_parameters

    method, backbone = json.loads(method_json), json.loads(backbone_json)
    logging.disable(logging.INFO)  # one build per method: its INFO lines are noise here
    try:
        with torch.device("meta"):
            model = build_model(method, backbone, pretrained=False)
    except Exception:  # noqa: BLE001 - any failure on meta: build it for real
        model = build_model(method, backbone, pretrained=False)
    finally:
        logging.disable(logging.NOTSET)
    return int(count_parameters(model)["trainable"])


def encoder_trains(spec: RunSpec) -> bool:
    """Whether the run's image encoder has trainable weights (so nothing can be cached)."""
    cfg = spec.method_cfg
    if spec.backbone_cfg.get("family") == "baseline" or cfg.get("encoder") == "train":
        return True
    targets = (cfg.get("lora") or {}).get("targets") or []
    targets = [targets] if isinstance(targets, str) else targets
    return any(str(t).startswith("encoder") for t in targets)


def _views(spec: RunSpec) -> int:
    aug = spec.train.get("augment") or {}
    flips = aug.get("hflip") or aug.get("vflip") or aug.get("flip")
    return DIHEDRAL_VIEWS if (flips or aug.get("rot90")) else 1


def run_seconds(spec: RunSpec, t: StepTime) -> float:
    """Estimated seconds to train ``spec`` (see the module docstring)."""
    images = sum(split_counts(spec, d)[0] for d in spec.train_sets)
    epochs = int(spec.train.get("epochs", 0) or 0)
    if epochs == 0:
        return 0.0
    if encoder_trains(spec) or spec.train.get("embedding_cache", "auto") == "off":
        return images * epochs * t.train_s
    return images * (min(epochs, _views(spec)) * t.encode_s + epochs * t.decoder_s)


def _size(spec: RunSpec) -> int:
    return int(spec.backbone_cfg.get("img_size") or 1024)


def _modes(spec: RunSpec) -> int:
    return len((spec.method_cfg.get("prompts") or {}).get("eval_modes", ["none"]))


def cost_table(studies: Mapping[str, Study], chosen: Sequence[str],
               rows: Sequence[Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Per study, then every chosen study at once (each shared run counted once): jobs,
    estimated hours of training and prediction on the device of the step times
    (``attrs["devices"]``: GPU-hours where a GPU was measured), and disk (GB, an upper
    bound: probability maps counted uncompressed).

    Raises:
        KeyError: a backbone has no row in the step-time table (measure it with
            ``benchmarks/bench_cost.py --only <backbone>:<size>``).
    """
    rows = read_step_times() if rows is None else rows
    devices: set[str] = set()

    def timing(spec: RunSpec) -> StepTime:
        t = step_time(rows, spec.backbone, _size(spec))
        if t is None:
            raise KeyError(f"backbone {spec.backbone!r} has no row in the step-time table; "
                           f"measure it: python benchmarks/bench_cost.py --only "
                           f"{spec.backbone}:{_size(spec)}")
        devices.add(t.device + (" (scaled by pixel count)" if t.scaled else ""))
        return t

    def costs(runs: Sequence[RunSpec], evals: Sequence[tuple[RunSpec, str]]) -> dict:
        train_h = sum(run_seconds(r, timing(r)) for r in runs) / 3600
        pred_h = 0.0
        for r, t in evals:
            step = timing(r)
            pred_h += split_counts(r, t)[1] * (step.encode_s + _modes(r) * step.decoder_s)
        pred_h /= 3600
        weights = sum(16 * trainable_count(r.method_json, r.backbone_json) for r in runs)
        probs = sum(split_counts(r, t)[1] * _modes(r) * 2 * NATIVE_PX.get(t, 1024 ** 2)
                    for r, t in evals)
        return {"train jobs": len(runs), "predict jobs": len(evals),
                "train h": round(train_h, 2), "predict h": round(pred_h, 2),
                "total h": round(train_h + pred_h, 2),
                "disk GB (at most)": round((weights + probs) / 1e9, 2)}

    out = [{"study": name, **costs(studies[name].runs, studies[name].evaluations)}
           for name in chosen]
    runs = list({r.name: r for n in chosen for r in studies[n].runs}.values())
    evals = list({(r.name, t): (r, t) for n in chosen
                  for r, t in studies[n].evaluations}.values())
    out.append({"study": "all (each run once)", **costs(runs, evals)})
    table = pd.DataFrame(out)
    table.attrs["devices"] = sorted(devices)
    return table
