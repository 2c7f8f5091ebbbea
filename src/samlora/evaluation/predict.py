"""Predict probability maps for a test set with a trained run, at native resolution."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from torch.utils.data import DataLoader

from samlora.training.progress import progress
from samlora.utils.io import make_temp_dir, write_json, write_prob_png

log = logging.getLogger(__name__)

#: Keys every run config.yaml holds (see ``training.loop.run_config``).
RUN_KEYS = ("method", "train_set", "seed", "method_cfg", "backbone", "backbone_cfg")
PREDICTIONS = "predictions.json"
#: Files in a results folder derived from its predictions (removed when they are replaced).
DERIVED = ("metrics_per_image.csv", "metrics.json", "evaluate_config.yaml")


def load_run(run_dir: Path, models_dir: Path, device: torch.device) -> tuple[Any, dict]:
    """Rebuild a trained model from ``run_dir/config.yaml`` + ``adapter.safetensors``.

    The weights' manifest (method and LoRA config, base checkpoint, trainable names,
    fingerprint of the frozen weights) is checked against the rebuilt model first.
    """
    from samlora.models.segmenter import load_trainable_state_dict
    from samlora.training.loop import build_run_model
    from samlora.training.manifest import ManifestError, check_manifest
    from samlora.training.state import WEIGHTS, frozen_fingerprint, load_weights

    cfg_path = run_dir / "config.yaml"
    rc = read_run_config(run_dir)
    tensors, manifest = load_weights(run_dir / WEIGHTS)
    if manifest.get("run_hash") != rc.get("run_hash"):  # both absent: a run of older code
        raise ManifestError(f"{run_dir / WEIGHTS}: written by run "
                            f"{str(manifest.get('run_hash'))[:12]}, but {cfg_path} describes run "
                            f"{str(rc.get('run_hash'))[:12]}: the train step did not finish; "
                            "run it again")
    model = build_run_model(rc, models_dir)
    check_manifest(manifest, model, rc, frozen_fingerprint(model), run_dir / WEIGHTS)
    load_trainable_state_dict(model, tensors)
    rc["selected"] = {k: manifest.get(f"selected_{k}")
                      for k in ("by", "epoch", "step", "score")}
    return model.to(device).eval(), rc


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run folder's ``config.yaml`` (what the train step wrote on success).

    Raises:
        FileNotFoundError: no config.yaml (the run was never trained to the end).
        ValueError: it is not YAML, or not a run config.
    """
    cfg_path = Path(run_dir) / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: run config not found (train the run first)")
    try:
        rc = yaml.safe_load(cfg_path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{cfg_path}: not valid YAML ({str(err).splitlines()[0]}); train "
                         "the run again to rewrite it") from None
    missing = [k for k in RUN_KEYS if not isinstance(rc, dict) or k not in rc]
    if missing:
        raise ValueError(f"{cfg_path}: not a samlora run config (lacks {missing}); train the "
                         "run again to rewrite it")
    return rc


@torch.inference_mode()
def predict_dataset(run_dir: Path, processed_dir: Path, out_dir: Path, models_dir: Path,
                    batch_size: int = 1, device: str = "auto",
                    prompts_cfg: Mapping[str, Any] | None = None,
                    config: Mapping[str, Any] | None = None) -> list[str]:
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
        config: the step's resolved config, written as ``predict_config.yaml`` with the
            outputs once every map is written (None: not written).

    Every map is written under a temporary folder first and swapped in at the end (see
    :func:`publish`): a killed predict leaves the previous outputs or none, never a mix.

    Returns:
        The predicted case ids.
    """
    from samlora.data.datasets import SegmentationDataset
    from samlora.data.transforms import unresize
    from samlora.training.loop import pick_device
    from samlora.training.prompted import evaluation_prompts, prompt_settings

    index_path = Path(processed_dir) / "index.csv"
    if not index_path.is_file():  # before the (slow) model build
        raise FileNotFoundError(f"{index_path}: test set {Path(processed_dir).name!r} is not "
                                "prepared; run the prepare step for it first")
    index = pd.read_csv(index_path, dtype={"case": str})
    cases = sorted(index.loc[index["split"] == "test", "case"])
    if not cases:
        raise ValueError(f"{index_path}: no cases in the test split")
    dev = pick_device(device)
    model, rc = load_run(Path(run_dir), Path(models_dir), dev)
    settings = prompt_settings(rc["method_cfg"] if prompts_cfg is None
                               else {"prompts": prompts_cfg})
    # Prepared at another resolution: map back to the native size (see data.policy).
    native = ({r.case: (int(r.native_height), int(r.native_width)) for r in index.itertuples()}
              if "native_height" in index.columns else {})
    from samlora.study.runspec import label_kind

    target = label_kind(Path(processed_dir).name, rc.get("target"))  # prompts come from it
    if target is not None:
        from samlora.data.datasets import select_label

        rows = pd.read_csv(index_path, dtype=str, keep_default_na=False)
        rows = rows[rows["case"].isin(cases)]
        cases = sorted(select_label(Path(processed_dir), rows, target, False)[1]["case"])
    from samlora.data.geometry import geometry_for

    geometry = geometry_for(rc["method_cfg"].get("geometry"), Path(processed_dir).name)
    ds = SegmentationDataset(Path(processed_dir), cases=cases, size=model.img_size,
                             label=target, geometry=geometry)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    from samlora.study.runspec import from_config
    from samlora.training.loop import run_cache

    cache = run_cache(model, from_config(rc), None, Path(models_dir), training=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob(".predict-tmp-*"), *out_dir.glob(".probs-old-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed predict into this folder
    staging = make_temp_dir(out_dir, ".predict-tmp-")
    try:
        for batch in progress(loader, len(loader), f"predict {Path(processed_dir).name}"):
            images = batch["image"].to(dev)
            encoded = None  # one encoding per batch, shared by every prompt mode
            if cache is not None:
                encoded = cache.encodings(model, images, batch["digest"], batch["view"])
            elif hasattr(model, "encode"):
                encoded = model.encode(images)
            for mode in settings.eval_modes:
                prompts = evaluation_prompts(batch, mode, settings)
                logits = model(images) if encoded is None and prompts is None else \
                    model(images, prompts, encoded)
                prob = torch.sigmoid(logits).float().cpu().numpy()
                mode_dir = staging / "probs" if mode == "none" else staging / "probs" / mode
                for i, case in enumerate(batch["case"]):
                    prepared_hw = (int(batch["orig_h"][i]), int(batch["orig_w"][i]))
                    meta = {"orig_hw": native.get(case, prepared_hw),
                            "resized_hw": (int(batch["resized_h"][i]),
                                           int(batch["resized_w"][i]))}
                    write_prob_png(mode_dir / f"{case}.png", unresize(prob[i, 0], meta))
        record = {"run": str(run_dir), "test_set": Path(processed_dir).name, "cases": cases,
                  "method": rc["method"], "train_set": rc["train_set"], "seed": rc["seed"],
                  "target": rc.get("target"), "run_name": rc.get("name"),
                  "selected": rc.get("selected"),
                  "run_hash": rc.get("run_hash"), "prompt_modes": list(settings.eval_modes)}
        publish(out_dir, staging, ("probs",), record, config)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %d probability maps to %s", len(cases), out_dir / "probs")
    return cases


def publish(out_dir: Path, staging: Path, folders: Sequence[str],
            record: Mapping[str, Any], config: Mapping[str, Any] | None,
            stale: Sequence[str] = ()) -> None:
    """Swap the staged ``folders`` into ``out_dir``; ``predictions.json`` goes last.

    The old ``predictions.json`` (and the metrics scored from the old maps, and ``stale``)
    are removed before the old folders are, so at no moment does a complete-looking folder
    hold maps of two predict runs: a reader finds either the old set, no set, or the new one.
    A killed swap leaves ``.<folder>-old-<pid>`` folders, which the next predict removes.
    """
    from samlora.config import save_config

    for name in (PREDICTIONS, *DERIVED, *stale):
        (out_dir / name).unlink(missing_ok=True)
    for folder in folders:
        final = out_dir / folder
        if final.exists():
            old = out_dir / f".{folder}-old-{os.getpid()}"
            os.replace(final, old)
            shutil.rmtree(old)
        os.replace(staging / folder, final)
    if config is not None:
        save_config(config, out_dir / "predict_config.yaml")
    write_json(out_dir / PREDICTIONS, dict(record))
