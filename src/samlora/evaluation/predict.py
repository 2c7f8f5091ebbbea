"""Predict probability maps for a test set with a trained run, at native resolution."""

from __future__ import annotations

import logging
from collections.abc import Mapping
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

    The weights' manifest (method and LoRA config, base checkpoint, trainable names,
    fingerprint of the frozen weights) is checked against the rebuilt model first.
    """
    from samlora.models.segmenter import load_trainable_state_dict
    from samlora.training.loop import build_run_model
    from samlora.training.manifest import check_manifest
    from samlora.training.state import WEIGHTS, frozen_fingerprint, load_weights

    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: run config not found (train the run first)")
    rc = yaml.safe_load(cfg_path.read_text())
    tensors, manifest = load_weights(run_dir / WEIGHTS)
    model = build_run_model(rc, models_dir)
    check_manifest(manifest, model, rc, frozen_fingerprint(model), run_dir / WEIGHTS)
    load_trainable_state_dict(model, tensors)
    return model.to(device).eval(), rc


@torch.no_grad()
def predict_dataset(run_dir: Path, processed_dir: Path, out_dir: Path, models_dir: Path,
                    batch_size: int = 1, device: str = "auto",
                    prompts_cfg: Mapping[str, Any] | None = None) -> list[str]:
    """Write ``out_dir/probs/<case>.png`` (16-bit, native size) for every test case.

    Prompt-free decoding (mode ``none``) writes ``probs/<case>.png``; a prompted method
    also writes ``probs/<mode>/<case>.png`` for each other evaluation mode, with prompts
    sampled from the test case's ground truth (seeded per case, so every run and method
    sees the same prompts). ``predictions.json`` lists the modes under ``prompt_modes``.

    Args:
        run_dir: a training run folder (config.yaml, adapter.safetensors).
        processed_dir: the prepared test dataset (index.csv with a ``test`` split).
        out_dir: results folder of this run on this test set.
        prompts_cfg: the method's ``prompts`` block as params.yaml has it now (evaluation
            modes may change without retraining); None = the block the run was trained with.

    Returns:
        The predicted case ids.
    """
    from samlora.data.datasets import SegmentationDataset
    from samlora.data.transforms import unresize
    from samlora.training.loop import pick_device
    from samlora.training.prompted import evaluation_prompts, prompt_settings

    dev = pick_device(device)
    model, rc = load_run(Path(run_dir), Path(models_dir), dev)
    settings = prompt_settings(rc["method_cfg"] if prompts_cfg is None
                               else {"prompts": prompts_cfg})
    index = pd.read_csv(Path(processed_dir) / "index.csv", dtype={"case": str})
    cases = sorted(index.loc[index["split"] == "test", "case"])
    if not cases:
        raise ValueError(f"{processed_dir / 'index.csv'}: no cases in the test split")
    # Prepared at another resolution: map back to the native size (see data.policy).
    native = ({r.case: (int(r.native_height), int(r.native_width)) for r in index.itertuples()}
              if "native_height" in index.columns else {})
    ds = SegmentationDataset(Path(processed_dir), cases=cases, size=model.img_size)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    probs_dir = Path(out_dir) / "probs"
    for batch in progress(loader, len(loader), f"predict {Path(processed_dir).name}"):
        images = batch["image"].to(dev)
        for mode in settings.eval_modes:
            prompts = evaluation_prompts(batch, mode, settings)
            logits = model(images) if prompts is None else model(images, prompts)
            prob = torch.sigmoid(logits).float().cpu().numpy()
            mode_dir = probs_dir if mode == "none" else probs_dir / mode
            for i, case in enumerate(batch["case"]):
                prepared_hw = (int(batch["orig_h"][i]), int(batch["orig_w"][i]))
                meta = {"orig_hw": native.get(case, prepared_hw),
                        "resized_hw": (int(batch["resized_h"][i]), int(batch["resized_w"][i]))}
                write_prob_png(mode_dir / f"{case}.png", unresize(prob[i, 0], meta))
    write_json(Path(out_dir) / "predictions.json",
               {"run": str(run_dir), "test_set": Path(processed_dir).name, "cases": cases,
                "method": rc["method"], "seed": rc["seed"],
                "prompt_modes": list(settings.eval_modes)})
    log.info("wrote %d probability maps to %s", len(cases), probs_dir)
    return cases
