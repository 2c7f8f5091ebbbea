"""Predict probability maps for a test set with a trained run, at native resolution."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from torch.utils.data import DataLoader

from samlora.training.progress import progress
from samlora.utils.io import write_json, write_prob_png

log = logging.getLogger(__name__)


def load_run(run_dir: Path, models_dir: Path, device: torch.device) -> tuple[Any, dict]:
    """Rebuild a trained model from ``run_dir/config.yaml`` + ``adapter.safetensors``.

    The frozen base weights are checked against the fingerprint the training run recorded.
    """
    from samlora.models.segmenter import load_trainable_state_dict
    from samlora.training.loop import build_run_model
    from samlora.training.state import WEIGHTS, frozen_fingerprint, load_weights

    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: run config not found (train the run first)")
    rc = yaml.safe_load(cfg_path.read_text())
    tensors, manifest = load_weights(run_dir / WEIGHTS)
    model = build_run_model(rc, models_dir)
    fp = frozen_fingerprint(model)
    if manifest.get("frozen_sha256") not in (None, fp):
        raise RuntimeError(f"{run_dir / WEIGHTS}: trained on a different base model "
                           f"(frozen weights {manifest['frozen_sha256'][:12]}…, rebuilt {fp[:12]}…)")
    load_trainable_state_dict(model, tensors)
    return model.to(device).eval(), rc


@torch.no_grad()
def predict_dataset(run_dir: Path, processed_dir: Path, out_dir: Path, models_dir: Path,
                    batch_size: int = 1, device: str = "auto") -> list[str]:
    """Write ``out_dir/probs/<case>.png`` (16-bit, native size) for every test case.

    Args:
        run_dir: a training run folder (config.yaml, adapter.safetensors).
        processed_dir: the prepared test dataset (index.csv with a ``test`` split).
        out_dir: results folder of this run on this test set.

    Returns:
        The predicted case ids.
    """
    from samlora.data.datasets import SegmentationDataset
    from samlora.data.transforms import unresize
    from samlora.training.loop import pick_device

    dev = pick_device(device)
    model, rc = load_run(Path(run_dir), Path(models_dir), dev)
    index = pd.read_csv(Path(processed_dir) / "index.csv", dtype={"case": str})
    cases = sorted(index.loc[index["split"] == "test", "case"])
    if not cases:
        raise ValueError(f"{processed_dir / 'index.csv'}: no cases in the test split")
    ds = SegmentationDataset(Path(processed_dir), cases=cases, size=model.img_size)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    probs_dir = Path(out_dir) / "probs"
    for batch in progress(loader, len(loader), f"predict {Path(processed_dir).name}"):
        prob = torch.sigmoid(model(batch["image"].to(dev))).float().cpu().numpy()
        for i, case in enumerate(batch["case"]):
            meta = {"orig_hw": (int(batch["orig_h"][i]), int(batch["orig_w"][i])),
                    "resized_hw": (int(batch["resized_h"][i]), int(batch["resized_w"][i]))}
            write_prob_png(probs_dir / f"{case}.png", unresize(prob[i, 0], meta))
    write_json(Path(out_dir) / "predictions.json",
               {"run": str(run_dir), "test_set": Path(processed_dir).name, "cases": cases,
                "method": rc["method"], "seed": rc["seed"]})
    log.info("wrote %d probability maps to %s", len(cases), probs_dir)
    return cases
